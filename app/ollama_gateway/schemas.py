"""Validation of OpenAI request bodies against the bundled JSON Schemas.

The schemas are generated from OpenAI's OpenAPI spec by ``schemas/generate.py``
and installed as the data package ``ollama_gateway.bundled_schemas``. They are
loaded on first use, one cached validator per schema, and failures become
:class:`~ollama_gateway.errors.InvalidRequest` worded like the live OpenAI API:
``param`` is the JSON path (``messages[0].content[1].image_url.url``), ``code``
one of ``missing_required_parameter``, ``invalid_type``, ``invalid_value`` or
``unknown_parameter``.

Works on jsonschema 3.2 through 4.x: the bundled files declare 2020-12 but use
only keywords that mean the same in Draft 7. No HTTP here.
"""
import functools
import json
import pkgutil
import reprlib
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import jsonschema
from jsonschema import validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from . import errors

_PACKAGE = "ollama_gateway.bundled_schemas"
_WORDS = {"string": "a string", "number": "a number", "integer": "an integer",
          "boolean": "a boolean", "array": "an array", "object": "an object",
          "null": "null"}
_RANGES = {"minimum": "less than the minimum of",
           "maximum": "greater than the maximum of",
           "exclusiveMinimum": "less than or equal to the minimum of",
           "exclusiveMaximum": "greater than or equal to the maximum of",
           "multipleOf": "not a multiple of"}
_LENGTHS = {"minItems": ("array", "short", "minimum"),
            "maxItems": ("array", "long", "maximum"),
            "minLength": ("string", "short", "minimum"),
            "maxLength": ("string", "long", "maximum")}

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 40
_repr.maxlist = _repr.maxdict = 3
_repr.maxlevel = 2


def _clip(text: str, limit: int = 60) -> str:
    """Return ``text`` cut to at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short(value: object) -> str:
    """Return a repr of ``value`` of at most 60 characters, in bounded time."""
    return _clip(_repr.repr(value))


def _type(validator: Any, types: Union[str, List[str]], instance: object,
          schema: dict) -> Iterator[ValidationError]:
    """Yield the ``type`` error, formatting the instance through :func:`_short`."""
    # The stock check repr()s the instance eagerly, even inside union branches
    # that are only probed: 80 ms for a request carrying a 20 MB base64 image.
    types = [types] if isinstance(types, str) else types
    if not any(validator.is_type(instance, name) for name in types):
        yield ValidationError("%s is not of type %s"
                              % (_short(instance), ", ".join(map(repr, types))))


def _base_class() -> Any:
    """Return jsonschema's own class: 2020-12 if installed, else Draft 7 (jsonschema < 4)."""
    # Not validator_for(): on jsonschema 3.2 it warns about the 2020-12 $schema.
    return getattr(jsonschema, "Draft202012Validator", None) or jsonschema.Draft7Validator


def _strict_integer(checker: Any, instance: object) -> bool:
    # JSON Schema calls 1.0 and 1E2 integers; the code after validation
    # (range(n), Ollama's Go decoder) does not, so requests may not either.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.lru_cache(maxsize=None)
def validator_class() -> Any:
    """Return the validator class for requests: integers are ``int``, never ``1.0``."""
    base = _base_class()
    return validators.extend(base, {"type": _type},
                             type_checker=base.TYPE_CHECKER.redefine("integer", _strict_integer))


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict:
    """Return the bundled schema ``name`` (e.g. ``"chat_completions.request"``)."""
    raw = pkgutil.get_data(_PACKAGE, name + ".json")
    if raw is None:
        raise LookupError("no bundled schema " + name)
    return json.loads(raw.decode("utf-8"))


@functools.lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    """Return the cached validator for schema ``name``; format checking is off."""
    return validator_class()(load(name))


#: The schemas every request is validated against.
REQUEST_SCHEMAS = ("chat_completions.request", "completions.request", "embeddings.request",
                   "responses.request")


def prepare() -> None:
    """Load and compile the request schemas now rather than on first use.

    For a server's parent process before it forks workers, so that they share
    these objects instead of each building its own.
    """
    for name in REQUEST_SCHEMAS:
        _shortcut(name)


# -- a shortcut for the common, simple request ---------------------------------
# jsonschema takes ~0.3 ms for an ordinary chat request on 4.x, most of the
# gateway's own CPU per request. Top-level fields whose schema is a plain
# scalar check (type, enum, bounds, length) are checked here directly, with
# jsonschema's semantics; so are messages that are nothing but a role and a
# text. The shortcut can only say "valid": anything else it meets (a tool, a
# content array, an integral float, a key it has no plain check for) sends
# the request to the full validator, which also words every error.

_SCALAR_TYPES = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # A float is left to jsonschema, which calls 1.0 an integer.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
_BOUNDS = {"minimum": lambda v, b: v >= b, "maximum": lambda v, b: v <= b,
           "exclusiveMinimum": lambda v, b: v > b, "exclusiveMaximum": lambda v, b: v < b}
_LENGTH = {"minLength": lambda v, b: len(v) >= b, "maxLength": lambda v, b: len(v) <= b}


def _scalar_check(schema: dict) -> Optional[Any]:
    """Return a predicate equal to ``schema`` if it is a plain scalar check, else None."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    if (not types or not set(types) <= set(_SCALAR_TYPES)
            or not set(schema) <= {"type", "enum"} | set(_BOUNDS) | set(_LENGTH)):
        return None
    enum = schema.get("enum")
    if enum is not None and not all(isinstance(e, str) or e is None for e in enum):
        return None  # 1 == True in Python but not in JSON Schema
    type_checks = [_SCALAR_TYPES[t] for t in types]
    bounds = [(_BOUNDS[k], schema[k]) for k in _BOUNDS if k in schema]
    lengths = [(_LENGTH[k], schema[k]) for k in _LENGTH if k in schema]

    def check(value: Any) -> bool:
        if not any(t(value) for t in type_checks):
            return False
        if enum is not None and value not in enum:
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return all(ok(value, bound) for ok, bound in bounds)
        if isinstance(value, str):
            return all(ok(value, bound) for ok, bound in lengths)
        return True
    return check


def _plain_string_check(schema: dict) -> Optional[Any]:
    """Return a check that passes any string, where ``schema`` accepts every string.

    For unions such as the Responses ``input`` (a string, or a list of items):
    a string needs no further look, anything else goes to the full validator.
    """
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    if "string" not in types or set(schema) & ({"enum", "const", "if", "anyOf", "oneOf",
                                                 "allOf", "not"} | set(_LENGTH) | {"pattern"}):
        return None
    return lambda value: isinstance(value, str)


@functools.lru_cache(maxsize=None)
def _shortcut(name: str) -> Optional[Any]:
    """Return the shortcut for schema ``name``, or None where it has none."""
    schema = load(name)
    # $defs only holds what refs deep inside structured fields point at.
    if set(schema) - {"$schema", "$defs", "type", "required", "properties"} \
            or schema.get("type") != "object":
        return None
    properties = schema.get("properties", {})
    checks = {key: check for key, check in
              ((key, _scalar_check(sub) or _plain_string_check(sub))
               for key, sub in properties.items()) if check}
    required = tuple(schema.get("required", ()))
    full = _validator(name)
    # Roles whose {"role", "content": text} message the full validator accepts.
    roles = frozenset(role for role in ("system", "developer", "user", "assistant")
                      if "messages" in properties and all(
                          full.is_valid(dict({k: "x" for k in required}, messages=[
                              {"role": role, "content": text}])) for text in ("", "x")))

    def valid(doc: dict) -> bool:
        for key in required:
            if key not in doc:
                return False
        for key, value in doc.items():
            check = checks.get(key)
            if check is not None:
                if not check(value):
                    return False
            elif key == "messages" and roles:
                if not (isinstance(value, list) and value and all(
                        type(m) is dict and len(m) == 2 and type(m.get("role")) is str
                        and m["role"] in roles
                        and isinstance(m.get("content"), str) for m in value)):
                    return False
            elif key in properties:
                return False  # a field with a structured schema: the full check
        return True
    return valid


def validate(name: str, doc: object) -> None:
    """Return None if ``doc`` is valid under schema ``name``, else raise InvalidRequest.

    .. versionadded:: 0.1
    """
    shortcut = _shortcut(name)
    if shortcut is not None and isinstance(doc, dict) and shortcut(doc):
        _check_limits(name, doc)
        return
    checker = _validator(name)
    if checker.is_valid(doc):  # stops at the first error; best_match walks everything
        _check_limits(name, doc)
        return
    err = best_match(checker.iter_errors(doc))
    # The generator rewrote every union it could explain; the rest (embeddings
    # input, completion prompt) are truly ambiguous, so report the union itself.
    # best_match's guess inside one differs by version: 3.2 says "[] is not of
    # type 'string'" for an empty embeddings input.
    while err.parent is not None:
        err = err.parent
    raise _to_invalid_request(err)


# -- limits OpenAI enforces that the generated schemas leave out -----------------
# Without them a zero max_tokens, a seed past int64 or an absurd dimensions
# reaches Ollama, whose Go decoder fails or loops on it.

_INT64 = (-2 ** 63, 2 ** 63 - 1)
_TOKENS = (1, 2 ** 31 - 1)
#: Schema name -> integer field -> (minimum, maximum), both inclusive.
LIMITS = {
    "chat_completions.request": {"max_tokens": _TOKENS, "max_completion_tokens": _TOKENS,
                                 "seed": _INT64, "n": (1, 128), "top_logprobs": (0, 20)},
    "completions.request": {"max_tokens": _TOKENS, "seed": _INT64, "n": (1, 128),
                            "logprobs": (0, 5), "best_of": (0, 20)},
    "embeddings.request": {"dimensions": (1, 65536)},
    "responses.request": {"max_output_tokens": (16, _TOKENS[1]), "top_logprobs": (0, 20),
                          "max_tool_calls": (0, _TOKENS[1])},
}


def _check_limits(name: str, doc: dict) -> None:
    """Raise InvalidRequest for an integer outside ``LIMITS``, a missing or empty ``model``."""
    if name in LIMITS and "model" not in doc:
        # The generated Responses schema leaves it optional; creating one needs it.
        raise errors.InvalidRequest("Missing required parameter: 'model'.", param="model",
                                    code="missing_required_parameter")
    if doc.get("model") == "":
        raise errors.InvalidRequest("Invalid 'model': empty string. Expected a string with "
                                    "minimum length 1, but got an empty string instead.",
                                    param="model", code="invalid_value")
    for key, (low, high) in LIMITS.get(name, {}).items():
        value = doc.get(key)
        if type(value) is int and not low <= value <= high:
            raise errors.InvalidRequest(
                "Invalid '%s': %s is %s %d." % (key, _short(value), "less than the minimum of"
                                                if value < low else "greater than the maximum of",
                                                low if value < low else high),
                param=key, code="invalid_value")


def check_json_schema(doc: object, param: str) -> None:
    """Return None if ``doc`` is a valid JSON Schema, else raise InvalidRequest for ``param``.

    Used on ``response_format.json_schema.schema`` before it becomes Ollama's
    ``format``, so a broken schema is the client's 400, not Ollama's 500.
    Clients send the same schema request after request, and a meta-schema
    check costs milliseconds, so verdicts are cached by the schema's text.

    .. versionadded:: 0.1
    """
    problem = _schema_problem(json.dumps(doc, sort_keys=True))
    if problem is not None:
        inner, message = problem
        raise errors.InvalidRequest(
            "Invalid schema for '%s'%s: %s." % (param, " at '%s'" % _clip(inner) if inner else "",
                                                _clip(message, 120)),
            param=param, code="invalid_value")


@functools.lru_cache(maxsize=256)
def _schema_problem(text: str) -> Optional[Tuple[Optional[str], str]]:
    """Return ``(path, message)`` of what makes the schema ``text`` invalid, or None."""
    try:
        # jsonschema's own class: a client schema may say "maxLength": 2.0.
        _base_class().check_schema(json.loads(text))
    except SchemaError as exc:
        return _param(list(exc.absolute_path)), exc.message
    return None


def _param(path: Sequence[Union[str, int]]) -> Optional[str]:
    """Return ``path`` as an OpenAI ``param`` (``messages[0].content``), None at the root."""
    out = ""
    for part in path:
        out += "[%d]" % part if isinstance(part, int) else ("." + part if out else part)
    return out or None


def _quote(value: object) -> str:
    """Return ``value`` for a message: strings in single quotes, all bounded."""
    return "'%s'" % _clip(value) if isinstance(value, str) else _short(value)


def _listing(values: List[object]) -> str:
    """Return values as ``'a', 'b', and 'c'`` (OpenAI's wording)."""
    words = [_quote(v) for v in values] or ["null"]
    if len(words) < 3:
        return " and ".join(words)
    # Bounded like every other message: Responses input items have 30 types.
    shown = len(words)
    while shown > 2 and len(", ".join(words[:shown])) > 200:
        shown -= 1
    if shown < len(words):
        return ", ".join(words[:shown]) + ", and %d more" % (len(words) - shown)
    return ", ".join(words[:-1]) + ", and " + words[-1]


def _type_of(value: object) -> str:
    """Return the JSON type name of a decoded JSON value."""
    for name, types in (("null", type(None)), ("boolean", bool), ("integer", int),
                        ("number", float), ("string", str), ("array", list)):
        if isinstance(value, types):
            return name
    return "object"


def _expected(types: List[str]) -> str:
    """Return ``types`` in words: ``a string or an array``."""
    words = [_WORDS[t] for t in dict.fromkeys(types) if t != "null"] or ["null"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _branch_types(branches: List[dict]) -> Optional[List[str]]:
    """Return the JSON types a union accepts, or None if a branch has no ``type``."""
    out = []  # type: List[str]
    for branch in branches:
        if "type" not in branch:
            return None
        out += [branch["type"]] if isinstance(branch["type"], str) else branch["type"]
    return out


def _to_invalid_request(err: ValidationError) -> errors.InvalidRequest:
    """Return the OpenAI-shaped error for ``err``; the message never dumps the instance."""
    path = list(err.absolute_path)
    param = _param(path)
    where = "'%s'" % _clip(param, 120) if param else "the request body"
    kind, value, instance = err.validator, err.validator_value, err.instance
    if kind == "required":
        missing = next((n for n in value if n not in instance), value[0])
        param = _param(path + [missing])
        return errors.InvalidRequest("Missing required parameter: '%s'." % _clip(param, 120),
                                     param=param, code="missing_required_parameter")
    if kind in ("anyOf", "oneOf"):
        types = _branch_types(value)
        if types is None or _type_of(instance) in types or (
                _type_of(instance) == "integer" and "number" in types):
            return errors.InvalidRequest("Invalid value for %s: it does not match any of "
                                         "the accepted forms." % where,
                                         param=param, code="invalid_value")
        kind, value = "type", types
    if kind == "type":
        return errors.InvalidRequest(
            "Invalid type for %s: expected %s, but got %s instead."
            % (where, _expected([value] if isinstance(value, str) else value),
               _WORDS[_type_of(instance)]), param=param, code="invalid_type")
    if kind in ("enum", "const"):
        allowed = [v for v in (value if kind == "enum" else [value]) if v is not None]
        return errors.InvalidRequest("Invalid value: %s. Supported values are: %s."
                                     % (_quote(instance), _listing(allowed)),
                                     param=param, code="invalid_value")
    if kind in _RANGES:
        return errors.InvalidRequest("Invalid %s: %s is %s %s." % (where, _short(instance),
                                                                  _RANGES[kind], _short(value)),
                                     param=param, code="invalid_value")
    if kind in _LENGTHS:
        noun, what, bound = _LENGTHS[kind]
        if instance:
            what, got = "%s too %s" % (noun, what), "%s with length %d" % (_WORDS[noun],
                                                                         len(instance))
        else:
            what, got = "empty " + noun, "an empty " + noun
        return errors.InvalidRequest(
            "Invalid %s: %s. Expected %s with %s length %d, but got %s instead."
            % (where, what, _WORDS[noun], bound, value, got), param=param, code="invalid_value")
    if kind == "additionalProperties":
        known = err.schema.get("properties", {})
        extra = next((k for k in instance if k not in known), "")
        param = _param(path + [extra])
        return errors.InvalidRequest("Unknown parameter: '%s'." % _clip(param, 120),
                                     param=param, code="unknown_parameter")
    return errors.InvalidRequest("Invalid value for %s." % where, param=param,
                                 code="invalid_value")
