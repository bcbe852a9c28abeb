"""Property tests: generated requests (hypothesis, hypothesis-jsonschema, schemathesis)."""
