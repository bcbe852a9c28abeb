"""Valid requests drawn from the bundled schemas, and mutations of them.

``chat_completions`` and ``responses`` are too big for hypothesis-jsonschema
(chat does not finish drawing 30 examples in 100 s; responses is ~700 KB of
``$defs``), so they are drawn from a reduced sub-schema: every top-level property
of at most ``_SIMPLE`` characters of schema, plus ``messages`` / ``input`` as a
plain list of role/content messages (``input`` also as a string).
"""
import json
from typing import Any, Dict, List, Tuple

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from .contract import ENDPOINTS, Raw, schema

_SIMPLE = 500
_ROLES = ["system", "developer", "user", "assistant"]
_MESSAGE = {"type": "object", "required": ["role", "content"], "additionalProperties": False,
            "properties": {"role": {"enum": _ROLES}, "content": {"type": "string", "maxLength": 40}}}
_MESSAGES = {"type": "array", "minItems": 1, "maxItems": 3, "items": _MESSAGE}
REDUCED = {"chat_completions": {"messages": _MESSAGES},
           "responses": {"input": {"anyOf": [{"type": "string", "maxLength": 40}, _MESSAGES]}}}


def request_schema(endpoint: str) -> Dict[str, Any]:
    """Return the schema requests of ``endpoint`` are drawn from (reduced for the big two)."""
    full = schema(ENDPOINTS[endpoint][1])
    if endpoint not in REDUCED:
        return full
    props = {k: v for k, v in full["properties"].items()
             if len(json.dumps(v)) <= _SIMPLE and "$ref" not in json.dumps(v)}
    props.update(REDUCED[endpoint])
    required = [k for k in full.get("required", []) if k in props]
    if endpoint == "responses":
        required = ["input"]
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


@st.composite
def valid_requests(draw: Any, endpoint: str) -> Dict[str, Any]:
    doc = draw(_drawn[endpoint])
    doc["model"] = ENDPOINTS[endpoint][2]
    if endpoint != "embeddings":
        doc["stream"] = draw(st.booleans())
    return doc


_drawn = {name: from_schema(request_schema(name)) for name in ENDPOINTS}

# --- mutations ------------------------------------------------------------------------

DEPTHS = [100, 1000, 10000]


def nested(depth: int) -> Raw:
    return Raw("[" * depth + "]" * depth)


_FLIPS = [0, -1, 1.5, "x", "", True, False, [], {}, ["x"], {"a": 1}, [[1]]]
_RAW_NUMBERS = ["NaN", "-NaN", "Infinity", "-Infinity", "1e309", "-1e309", "9" * 300, "-" + "9" * 300,
                "1E2", "2.0", "1e0", "-0.0", "0e400"]


def _paths(doc: Any, path: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    """Return the paths of every leaf and container in ``doc`` (not the root)."""
    out = []  # type: List[Tuple[Any, ...]]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        out.append(path + (key,))
        out += _paths(value, path + (key,))
    return out


def _place(doc: Any, path: Tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


@st.composite
def mutated_requests(draw: Any, endpoint: str) -> Tuple[str, Dict[str, Any]]:
    """Return ``(kind, doc)``: a valid request with one thing broken (or bent) in it."""
    doc = draw(valid_requests(endpoint))
    props = sorted(schema(ENDPOINTS[endpoint][1])["properties"])
    kind = draw(st.sampled_from(["type_flip", "null", "nested", "lone_surrogate", "raw_number",
                                 "enum_wrong_type", "empty_string", "long_string"]))
    paths = _paths(doc)
    strings = [p for p in paths if isinstance(_get(doc, p), str)]
    if kind in ("type_flip", "null", "nested", "raw_number"):
        path = draw(st.sampled_from(paths + [(p,) for p in props]))
        value = {"type_flip": lambda: draw(st.sampled_from(_FLIPS)),
                 "null": lambda: None,
                 "nested": lambda: nested(draw(st.sampled_from(DEPTHS))),
                 "raw_number": lambda: Raw(draw(st.sampled_from(_RAW_NUMBERS)))}[kind]()
    elif kind == "enum_wrong_type":
        enums = [p for p in paths if p[-1] in ("role", "encoding_format", "service_tier", "reasoning_effort",
                                               "verbosity", "truncation", "prompt_cache_retention")]
        path = draw(st.sampled_from(enums or [("encoding_format",), ("service_tier",)]))
        value = draw(st.sampled_from([{}, [], {"role": "user"}, ["user"]]))
    else:
        path = draw(st.sampled_from(strings or [("model",)]))
        value = {"lone_surrogate": lambda: Raw(draw(st.sampled_from(['"\\ud800"', '"a\\udfffb"',
                                                                     '"\\udc00\\ud800"', '"x\\ud83d"']))),
                 "empty_string": lambda: "",
                 "long_string": lambda: "x" * draw(st.sampled_from([4096, 100000]))}[kind]()
    _place(doc, path, value)
    return kind, doc


def _get(doc: Any, path: Tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc
