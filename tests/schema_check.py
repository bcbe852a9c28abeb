"""Check what the gateway emits against the bundled OpenAI response schemas."""
import json
import pkgutil
from functools import lru_cache

import jsonschema

_Validator = getattr(jsonschema, "Draft202012Validator", jsonschema.Draft7Validator)


@lru_cache(maxsize=None)
def _validator(name):
    return _Validator(json.loads(pkgutil.get_data("ollama_gateway.bundled_schemas", name + ".json")))


def assert_matches(name, doc):
    """Fail with every schema error if ``doc`` does not conform to schema ``name``."""
    errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:200])
              for e in _validator(name).iter_errors(doc)]
    assert not errors, "%s does not match %s:\n%s" % (json.dumps(doc)[:500], name, "\n".join(errors))
