"""The request contract every generated request is held to, and the raw JSON it is sent as.

A body is sent as text written here (``Raw`` fragments spliced into ``json.dumps``
output), so it can hold what Python's ``json`` never writes: lone ``\\ud800``
escapes, ``NaN``, ``1e309``, 300-digit integers, ``1E2``, 10,000 nested arrays.
"""
import json
import pkgutil
import re
import threading
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

import jsonschema
import requests

_Validator = getattr(jsonschema, "Draft202012Validator", jsonschema.Draft7Validator)

#: endpoint name -> (path, request schema, model, upstream paths it may reach)
ENDPOINTS = {
    "chat_completions": ("/chat/completions", "chat_completions.request", "llama3.2"),
    "completions": ("/completions", "completions.request", "llama3.2"),
    "embeddings": ("/embeddings", "embeddings.request", "nomic-embed-text"),
    "responses": ("/responses", "responses.request", "llama3.2"),
}

MAX_MESSAGE = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")


class Raw:
    """A fragment of JSON text written into the body verbatim."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return "Raw(%r)" % (self.text[:60] + ("..." if len(self.text) > 60 else ""))


def dumps(doc: Any) -> bytes:
    """Return ``doc`` as JSON bytes, each ``Raw`` replaced by its text."""
    raws = []  # type: List[str]

    def strip(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return "\x00RAW%d\x00" % (len(raws) - 1)
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(doc), allow_nan=False)
    for index, raw in enumerate(raws):
        text = text.replace(json.dumps("\x00RAW%d\x00" % index), raw)
    return text.encode("utf-8")


def _no_constants(name: str) -> Any:
    raise ValueError("non-standard JSON constant %s" % name)


def strict_loads(body: bytes) -> Any:
    """Parse ``body`` as RFC 8259 JSON: UTF-8, no NaN/Infinity, no overflowing numbers."""
    def finite(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise ValueError("number %s overflows a double" % text)
        return value
    return json.loads(body.decode("utf-8"), parse_constant=_no_constants, parse_float=finite)


def lone_surrogates(doc: Any, path: str = "$") -> List[str]:
    """Return the JSON paths of strings (keys too) holding UTF-16 surrogates."""
    found = []  # type: List[str]
    if isinstance(doc, str):
        if _SURROGATE.search(doc):
            found.append(path)
    elif isinstance(doc, dict):
        for key, value in doc.items():
            if _SURROGATE.search(key):
                found.append(path + "{key}")
            found += lone_surrogates(value, "%s.%s" % (path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += lone_surrogates(value, "%s[%d]" % (path, index))
    return found


@lru_cache(maxsize=None)
def validator(schema_name: str) -> Any:
    return _Validator(json.loads(pkgutil.get_data("ollama_gateway.bundled_schemas", schema_name + ".json")))


def schema(schema_name: str) -> Dict[str, Any]:
    return json.loads(pkgutil.get_data("ollama_gateway.bundled_schemas", schema_name + ".json"))


def is_valid(endpoint: str, body: bytes) -> bool:
    """Return whether ``body`` is a valid request by the bundled schema.

    As OpenAI does (and the gateway documents), a top-level ``null`` means "not given".
    Bodies that are not strict JSON, or too deep for Python's parser, are invalid.
    """
    try:
        doc = strict_loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(doc, dict):
        return False
    doc = {k: v for k, v in doc.items() if v is not None}
    try:
        return validator(ENDPOINTS[endpoint][1]).is_valid(doc)
    except RecursionError:
        return False


class Counter:
    """Requests sent per test, printed at the end of the module."""

    def __init__(self) -> None:
        self.sent = {}  # type: Dict[str, int]
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self.sent[name] = self.sent.get(name, 0) + 1

    def report(self) -> str:
        return "generated requests sent: %d (%s)" % (
            sum(self.sent.values()), ", ".join("%s=%d" % kv for kv in sorted(self.sent.items())))


def check_stream(resp: requests.Response) -> None:
    """Read a streamed 200 to its end; every ``data:`` frame is strict JSON or ``[DONE]``."""
    assert resp.headers["Content-Type"].startswith("text/event-stream"), resp.headers
    text = resp.content.decode("utf-8")
    frames = [line[5:].strip() for line in text.split("\n") if line.startswith("data:")]
    assert frames, "a streamed 200 with no data frames: %r" % text[:500]
    for frame in frames:
        if frame != "[DONE]":
            strict_loads(frame.encode())


def content_type(resp: Any) -> Optional[str]:
    """Return the Content-Type of a requests or schemathesis response (whose headers hold lists)."""
    value = {k.lower(): v for k, v in resp.headers.items()}.get("content-type")
    return value[0] if isinstance(value, list) else value


def check_error(resp: requests.Response) -> Dict[str, Any]:
    """Check a 4xx: OpenAI-shaped JSON error, a short message, ``application/json``."""
    assert content_type(resp) == "application/json", resp.headers
    body = strict_loads(resp.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert len(error["message"]) <= MAX_MESSAGE, "message of %d chars: %r..." % (
        len(error["message"]), error["message"][:200])
    assert isinstance(error["type"], str), error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return error


def print_line(request: Any, line: str) -> None:
    """Print ``line`` past pytest's capture (a module's count of requests sent)."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        print("\n" + line)


def describe(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else "%s... (%d bytes)" % (text[:limit], len(body))


def send(base_url: str, emulator: Any, endpoint: str, body: bytes, valid: Optional[bool] = None,
         session: Optional[requests.Session] = None) -> Tuple[requests.Response, list]:
    """POST ``body`` to ``endpoint`` and check the whole contract; return the answer and what reached Ollama.

    ``valid`` defaults to the bundled schema's verdict. An invalid request must be a 4xx
    that never reached Ollama; any answer is 2xx or 4xx, never 5xx.
    """
    if valid is None:
        valid = is_valid(endpoint, body)
    before = len(emulator.requests)
    resp = (session or requests).post(base_url + ENDPOINTS[endpoint][0], data=body,
                                      headers={"Content-Type": "application/json"}, timeout=30)
    content = resp.content  # the whole answer, streamed or not
    upstream = list(emulator.requests[before:])
    where = "POST %s %s -> %d %s" % (ENDPOINTS[endpoint][0], describe(body), resp.status_code,
                                      describe(content, 500))
    assert 200 <= resp.status_code < 300 or 400 <= resp.status_code < 500, where
    for rec in upstream:
        try:
            sent = strict_loads(rec.body) if rec.body.strip() else None
        except ValueError as exc:
            raise AssertionError("Ollama got a body that is not strict JSON (%s): %s\n%s"
                                 % (exc, describe(rec.body), where))
        bad = lone_surrogates(sent)
        assert not bad, "Ollama got lone surrogates at %s: %s\n%s" % (bad, describe(rec.body), where)
    if resp.status_code >= 400:
        check_error(resp)
    elif resp.headers.get("Content-Type", "").startswith("text/event-stream"):
        check_stream(resp)
    else:
        assert resp.headers.get("Content-Type") == "application/json", where
        strict_loads(content)
    if not valid:
        assert 400 <= resp.status_code < 500, "an invalid request was accepted: " + where
        assert not upstream, "an invalid request reached Ollama (%s): %s" % (
            [r.path for r in upstream], where)
    return resp, upstream
