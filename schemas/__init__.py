"""OpenAI JSON Schemas bundled with the gateway (generated; see generate.py).

Installed as the data package ``ollama_gateway.bundled_schemas``.
"""
