"""A stdlib-only Ollama look-alike on loopback, for tests that must not fake ``requests``.

It speaks Ollama's native wire formats:
JSON bodies with ``application/json; charset=utf-8``, NDJSON streams written one chunk
per line, ``{"error": ...}`` bodies, gin's plain-text 404/405. Tests either rely on the
deterministic default behaviour (the assistant answers ``"Echo: <last user text>"``) or
queue replies per path with :meth:`OllamaEmulator.script`.
"""
import copy
import hashlib
import json
import math
import random
import re
import select
import socket
import string
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

JSON_TYPE = "application/json; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
VERSION = "0.33.0"
# Seconds between peer-liveness checks while a reply waits; bounds stop() latency too.
POLL = 0.02
NO_VISION = "this model is missing data required for image input"


def now_rfc3339() -> str:
    """Return the current UTC time as Ollama writes it: RFC 3339, nanoseconds, zeros trimmed."""
    seconds, nanos = divmod(time.time_ns(), 10 ** 9)
    fraction = ("%09d" % nanos).rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ("." + fraction if fraction else "") + "Z"


def _metrics(prompt_eval_count: Optional[int], eval_count: Optional[int]) -> Dict[str, int]:
    """Return final-line metrics; counts and durations are ``omitempty`` in Go, so zeros vanish."""
    prompt_ns, eval_ns = (prompt_eval_count or 0) * 1_000_000, (eval_count or 0) * 25_000_000
    out = {"total_duration": 1_234_567 + prompt_ns + eval_ns + 5_000_000, "load_duration": 1_234_567}
    for key, value in (("prompt_eval_count", prompt_eval_count), ("prompt_eval_duration", prompt_ns),
                       ("eval_count", eval_count), ("eval_duration", eval_ns)):
        if value:
            out[key] = value
    return out


def _line(head: Dict[str, Any], logprobs: Optional[list], done: bool, done_reason: Optional[str],
          extra: Dict[str, Any], prompt_eval_count: Optional[int], eval_count: Optional[int]) -> Dict[str, Any]:
    line = dict(head)
    if logprobs is not None:
        line["logprobs"] = logprobs
    line["done"] = done
    if done_reason is not None:
        line["done_reason"] = done_reason
    line.update(extra)
    if done:
        line.update(_metrics(prompt_eval_count, eval_count))
    else:
        line.update({k: v for k, v in (("prompt_eval_count", prompt_eval_count), ("eval_count", eval_count)) if v})
    return line


def chat_line(model: str, content: str = "", thinking: Optional[str] = None, tool_calls: Optional[list] = None,
              logprobs: Optional[list] = None, done: bool = False, done_reason: Optional[str] = None,
              prompt_eval_count: Optional[int] = None, eval_count: Optional[int] = None) -> Dict[str, Any]:
    """Return one native ``/api/chat`` line; a ``done`` line also gets durations (``done_reason`` only if given)."""
    message = {"role": "assistant", "content": content}  # type: Dict[str, Any]
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    head = {"model": model, "created_at": now_rfc3339(), "message": message}
    return _line(head, logprobs, done, done_reason, {}, prompt_eval_count, eval_count)


def generate_line(model: str, response: str = "", thinking: Optional[str] = None, logprobs: Optional[list] = None,
                  done: bool = False, done_reason: Optional[str] = None, prompt_eval_count: Optional[int] = None,
                  eval_count: Optional[int] = None, context: Optional[List[int]] = None) -> Dict[str, Any]:
    """Return one native ``/api/generate`` line (``context`` belongs on the final line)."""
    head = {"model": model, "created_at": now_rfc3339(), "response": response}  # type: Dict[str, Any]
    if thinking:
        head["thinking"] = thinking
    extra = {"context": context} if context is not None else {}
    return _line(head, logprobs, done, done_reason, extra, prompt_eval_count, eval_count)


def model_entry(name: str, family: str, parameter_size: str, quantization_level: str, capabilities: List[str],
                context_length: int, embedding_length: int, size: int, families: Optional[List[str]] = None,
                modified_at: str = "2026-08-01T09:30:12.482915073+02:00") -> Dict[str, Any]:
    """Return an ``/api/tags`` entry; ``capabilities`` and the lengths also drive ``/api/show`` and the defaults."""
    return {"name": name, "model": name, "modified_at": modified_at, "size": size,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {"parent_model": "", "format": "gguf", "family": family, "families": families or [family],
                        "parameter_size": parameter_size, "quantization_level": quantization_level,
                        "context_length": context_length, "embedding_length": embedding_length},
            "capabilities": list(capabilities)}


DEFAULT_MODELS = [
    model_entry("llama3.2:latest", "llama", "3.2B", "Q4_K_M", ["completion", "tools"], 131072, 3072, 2019393189),
    model_entry("llava:latest", "llama", "7B", "Q4_0", ["completion", "vision"], 32768, 4096, 4733363377,
                families=["llama", "clip"]),
    model_entry("qwen3:latest", "qwen3", "8.2B", "Q4_K_M", ["completion", "tools", "thinking"], 40960, 4096,
                5225376047),
    model_entry("qwen2.5-coder:1.5b", "qwen2", "1.5B", "Q4_K_M", ["completion", "tools", "insert"], 32768, 1536,
                986061892),
    model_entry("nomic-embed-text:latest", "nomic-bert", "137M", "F16", ["embedding"], 2048, 768, 274302450),
    model_entry("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "llama", "1.2B", "Q4_K_M", ["completion"],
                131072, 2048, 807694464),
]


# --- replies -------------------------------------------------------------------------

class Reply:
    """A scripted answer: ``send(handler, recorded)`` writes it (or not) on the connection."""

    def __init__(self, label: str, send: Callable[["_Handler", "Recorded"], None]) -> None:
        self.label, self.send = label, send

    def __repr__(self) -> str:
        return "<Reply %s>" % self.label


def raw_reply(status: int, body: bytes, content_type: str) -> Reply:
    """Return a reply with an arbitrary body, e.g. a proxy's HTML 502 page."""
    def send(h: "_Handler", rec: "Recorded") -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if h.start(status, headers, rec) and h.command != "HEAD":
            h.write(body, rec)
    return Reply("%d %s" % (status, content_type), send)


def json_reply(body: Any, status: int = 200) -> Reply:
    """Return a reply with a compact JSON body, as gin's ``c.JSON`` writes it."""
    return raw_reply(status, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), JSON_TYPE)


def error_reply(status: int, message: str) -> Reply:
    """Return a native error reply ``{"error": message}``."""
    return json_reply({"error": message}, status)


def ndjson_reply(lines: list, delay: float = 0.0, first_delay: float = 0.0, then: str = "end",
                 headers_delay: float = 0.0) -> Reply:
    """Return a 200 NDJSON stream, one chunk per line; ``then`` is ``"end"``, ``"drop"`` or ``"stall"``.

    ``headers_delay`` holds the headers back, as Ollama does while it loads a model.
    Dict lines are JSON-encoded; str/bytes lines go out verbatim (for malformed-line tests).
    """
    if then not in ("end", "drop", "stall"):
        raise ValueError("then must be 'end', 'drop' or 'stall', not %r" % (then,))
    chunks = [line if isinstance(line, bytes) else line.encode() if isinstance(line, str)
              else json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for line in lines]

    def send(h: "_Handler", rec: "Recorded") -> None:
        if headers_delay and not h.wait(headers_delay, rec):
            return
        if not h.start(200, [("Content-Type", NDJSON_TYPE), ("Transfer-Encoding", "chunked")], rec):
            return
        if first_delay and not h.wait(first_delay, rec):
            return
        for index, data in enumerate(chunks):
            if index and delay and not h.wait(delay, rec):
                return
            if not h.write(b"%X\r\n%s\r\n" % (len(data), data), rec):
                return
        if then == "end":
            h.write(b"0\r\n\r\n", rec)
            return
        if then == "stall":
            h.wait(None, rec)
        h.abort()
    return Reply("ndjson %d lines, then %s" % (len(chunks), then), send)


def stall_reply(seconds: float) -> Reply:
    """Return a reply that sends nothing for ``seconds`` (less if the peer leaves or stop() runs), then closes."""
    def send(h: "_Handler", rec: "Recorded") -> None:
        h.wait(seconds, rec)
        h.abort()
    return Reply("stall %ss" % seconds, send)


def drop_reply() -> Reply:
    """Return a reply that closes the connection without any response."""
    return Reply("drop", lambda h, rec: h.abort())


# --- recorded requests -----------------------------------------------------------------

class Recorded:
    """One request as the emulator received it, plus what happened to the connection afterwards.

    ``headers`` is the parsed ``http.client.HTTPMessage``: case-insensitive ``[]``, ``get``, ``in``.
    """

    def __init__(self, method: str, path: str, headers: Any, body: bytes, query: str = "",
                 peer: Tuple[str, int] = ("", 0)) -> None:
        self.method, self.path, self.query, self.peer, self.headers, self.body = \
            method, path, query, peer, headers, body
        try:
            self.json = json.loads(body) if body.strip() else None  # type: Any
        except ValueError:
            self.json = None
        self.received_at = time.monotonic()
        self.disconnected = threading.Event()  # the peer closed while the emulator was still replying
        self.disconnected_at = None  # type: Optional[float]
        self.finished = threading.Event()  # the emulator is done with its reply (written or abandoned)

    def mark_disconnected(self) -> None:
        if self.disconnected_at is None:
            self.disconnected_at = time.monotonic()
        self.disconnected.set()

    def __repr__(self) -> str:
        return "<Recorded %s %s %r>" % (self.method, self.path, self.json if self.json is not None else self.body)


# --- default behaviour ---------------------------------------------------------------------

class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.reply = error_reply(status, message)


def _normalise_name(name: str) -> str:
    """Return ``name`` with the default tag, as Ollama's ``ParseName`` fills it in."""
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _key(name: str) -> str:
    key = _normalise_name(name.strip()).lower()
    for prefix in ("registry.ollama.ai/", "library/"):
        key = key[len(prefix):] if key.startswith(prefix) else key
    return key


def _find(models: List[Dict[str, Any]], name: str) -> Optional[Dict[str, Any]]:
    key = _key(name) if name else None
    return next((m for m in models if _key(m.get("model") or m.get("name", "")) == key), None)


def _qualified(name: str) -> str:
    full = _normalise_name(name)
    depth = full.count("/")
    return full if depth >= 2 else ("registry.ollama.ai/" if depth else "registry.ollama.ai/library/") + full


def _body(rec: Recorded, kind: str) -> Dict[str, Any]:
    """Return the request object, failing the way gin's ``ShouldBindJSON`` does."""
    if not rec.body.strip():
        raise _Fail(400, "missing request body")
    if not isinstance(rec.json, dict):
        if rec.json is None:
            first = rec.body.strip()[:1].decode("utf-8", "replace")
            raise _Fail(400, "invalid character '%s' looking for beginning of value" % first)
        go_type = {list: "array", str: "string", bool: "bool"}.get(type(rec.json), "number")
        raise _Fail(400, "json: cannot unmarshal %s into Go value of type api.%s" % (go_type, kind))
    return rec.json


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _resolve(emu: "OllamaEmulator", req: Dict[str, Any], verb: str) -> Tuple[str, Dict[str, Any]]:
    """Return the model name and catalogue entry; fail like Ollama on a missing capability or a bad argument."""
    name = _text(req.get("model"))
    entry = _find(emu.models, name)
    if entry is None:
        raise _Fail(404, "model '%s' not found" % name)
    caps = entry.get("capabilities") or []
    images = req.get("images") or any(isinstance(m, dict) and m.get("images") for m in req.get("messages") or [])
    if "completion" not in caps:
        raise _Fail(400, '"%s" does not support %s' % (name, verb))
    if req.get("tools") and "tools" not in caps:
        raise _Fail(400, "%s does not support tools" % _qualified(name))
    if req.get("suffix") and "insert" not in caps:
        raise _Fail(400, "%s does not support insert" % _qualified(name))
    if req.get("think") and "thinking" not in caps:
        raise _Fail(400, '"%s" does not support thinking' % name)
    top = req.get("top_logprobs") or 0
    if not isinstance(top, int) or not 0 <= top <= 20:
        raise _Fail(400, "top_logprobs must be between 0 and 20")
    fmt = req.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        raise _Fail(500, 'invalid format: %s; expected "json" or a valid JSON Schema object'
                    % json.dumps(json.dumps(fmt)))
    if images and "vision" not in caps:
        raise _Fail(400, NO_VISION)
    return name, entry


def _plausible(schema: Any) -> Any:
    """Return a value a model could plausibly produce for a JSON schema."""
    if not isinstance(schema, dict):
        return "example"
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("anyOf"):
        return _plausible(schema["anyOf"][0])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _plausible(props.get(k)) for k in (schema.get("required") or list(props))}
    if kind == "array":
        return [_plausible(schema.get("items"))]
    return {"integer": 42, "number": 3.5, "boolean": True, "null": None}.get(kind, "example")


def _pieces(text: str) -> List[str]:
    """Return ``text`` split into word-sized pieces whose concatenation is ``text``."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def _logprobs(piece: str, top: int) -> List[Dict[str, Any]]:
    logprob = -round(0.05 + (len(piece) % 5) * 0.2, 4)
    entry = {"token": piece, "logprob": logprob, "bytes": list(piece.encode())}  # type: Dict[str, Any]
    if top:
        alts = [(piece, logprob)] + [("alt%d" % k, logprob - k) for k in range(1, top)]
        entry["top_logprobs"] = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts]
    return [entry]


def _tool_call(tool: Dict[str, Any]) -> Dict[str, Any]:
    function = tool.get("function") or {}
    arguments = _plausible(function.get("parameters") or {"type": "object"})
    call_id = "call_" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return {"id": call_id, "function": {"index": 0, "name": function.get("name", ""),
                                        "arguments": arguments if isinstance(arguments, dict) else {}}}


def _plan(req: Dict[str, Any], entry: Dict[str, Any], text: str, tools: Optional[list]) -> Tuple[list, str]:
    """Return the generated events (thinking, content or a tool call) and the ``done_reason``."""
    events = []  # type: List[Dict[str, Any]]
    if "thinking" in (entry.get("capabilities") or []) and req.get("think") is not False:
        events += [{"thinking": p} for p in _pieces("The user wrote: " + text)]  # thinking models think by default
    fmt = req.get("format")
    if tools:
        events.append({"tool_calls": [_tool_call(tools[0])]})
    else:
        answer = json.dumps(_plausible(fmt) if isinstance(fmt, dict) else {"echo": text}) if fmt else "Echo: " + text
        for piece in _pieces(answer):
            event = {"content": piece}  # type: Dict[str, Any]
            if req.get("logprobs"):
                event["logprobs"] = _logprobs(piece, req.get("top_logprobs") or 0)
            events.append(event)
    limit = (req.get("options") or {}).get("num_predict")
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit < len(events):
        return events[:limit], "length"
    return events, "stop"


def _respond(req: Dict[str, Any], lines: List[Dict[str, Any]], chat: bool) -> Any:
    """Return the NDJSON stream (the native default) or, with ``stream: false``, the lines folded into one."""
    if req.get("stream") is not False:
        return ndjson_reply(lines)
    final = dict(lines[-1])
    parts = [line["message"] if chat else line for line in lines]
    holder = dict(final["message"]) if chat else final
    holder["content" if chat else "response"] = "".join(p.get("content" if chat else "response", "") for p in parts)
    thinking = "".join(p.get("thinking", "") for p in parts)
    if thinking:
        holder["thinking"] = thinking
    calls = [c for p in parts for c in p.get("tool_calls", [])]
    if calls:
        holder["tool_calls"] = calls
    logprobs = [lp for line in lines for lp in line.get("logprobs", [])]
    if logprobs:
        final["logprobs"] = logprobs
    if chat:
        final["message"] = holder
    return json_reply(final)


def _chat(emu: "OllamaEmulator", rec: Recorded) -> Any:
    req = _body(rec, "ChatRequest")
    if not req.get("model"):
        raise _Fail(400, "model is required")
    name, entry = _resolve(emu, req, "chat")
    messages = [m for m in req.get("messages") or [] if isinstance(m, dict)]
    if not messages:
        return json_reply({"model": name, "created_at": now_rfc3339(),  # loads the model, even with stream
                           "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "load"})
    users = [_text(m.get("content")) for m in messages if _text(m.get("role")).lower() == "user"]
    last_is_user = _text(messages[-1].get("role")).lower() == "user"
    events, reason = _plan(req, entry, users[-1] if users else "", req.get("tools") if last_is_user else None)
    lines = [chat_line(name, e.get("content", ""), e.get("thinking"), e.get("tool_calls"), e.get("logprobs"))
             for e in events]
    prompt_tokens = sum(len(_text(m.get("content")).split()) + 1 for m in messages)
    lines.append(chat_line(name, done=True, done_reason=reason, prompt_eval_count=prompt_tokens,
                           eval_count=len(events)))
    return _respond(req, lines, chat=True)


def _generate(emu: "OllamaEmulator", rec: Recorded) -> Any:
    req = _body(rec, "GenerateRequest")
    name, entry = _resolve(emu, req, "generate")
    prompt = _text(req.get("prompt"))
    if not prompt and not req.get("images"):
        return json_reply({"model": name, "created_at": now_rfc3339(), "response": "", "done": True,
                           "done_reason": "load"})
    events, reason = _plan(req, entry, prompt, None)
    lines = [generate_line(name, e.get("content", ""), e.get("thinking"), e.get("logprobs")) for e in events]
    prompt_tokens = len(" ".join(_text(req.get(k)) for k in ("system", "prompt", "suffix")).split()) + 1
    lines.append(generate_line(name, done=True, done_reason=reason, prompt_eval_count=prompt_tokens,
                               eval_count=len(events), context=None if req.get("raw") else [1, 2, 3]))
    return _respond(req, lines, chat=False)


def _unit(vector: List[float]) -> List[float]:
    norm = max(math.sqrt(sum(v * v for v in vector)), 1e-12)
    return [v / norm for v in vector]


def _embed(emu: "OllamaEmulator", rec: Recorded) -> Any:
    req = _body(rec, "EmbedRequest")
    name = _text(req.get("model"))
    if not name:
        raise _Fail(404, "model '' not found")
    raw = req.get("input")
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        texts = raw
    elif isinstance(raw, str) or raw is None:
        texts = [raw] if raw else []
    else:
        raise _Fail(400, "invalid input type")
    entry = _find(emu.models, name)
    if entry is None:
        raise _Fail(404, 'model "%s" not found, try pulling it first' % name)
    if not texts:
        return json_reply({"model": name, "embeddings": []})
    if "embedding" not in (entry.get("capabilities") or []):
        # The runner refuses, not the handler: 501 from a live Ollama for a chat-only model.
        raise _Fail(501, "this model does not support embeddings")
    size = entry.get("details", {}).get("embedding_length") or 768
    dims = req.get("dimensions")
    vectors = []
    for text in texts:
        rng = random.Random(text)  # str seeds hash with SHA-512: stable across runs and PYTHONHASHSEED
        vector = _unit([rng.uniform(-1.0, 1.0) for _ in range(size)])
        vectors.append(_unit(vector[:dims]) if isinstance(dims, int) and 0 < dims < size else vector)
    tokens = sum(max(1, len(t.split())) for t in texts)
    return json_reply(dict({"model": name, "embeddings": vectors}, **_metrics(tokens, None)))


def _show(emu: "OllamaEmulator", rec: Recorded) -> Any:
    req = _body(rec, "ShowRequest")
    name = _text(req.get("model")) or _text(req.get("name"))
    if not name:
        raise _Fail(400, "model is required")
    entry = _find(emu.models, name)
    if entry is None:
        raise _Fail(404, "model '%s' not found" % _normalise_name(name))
    details = entry.get("details", {})
    arch = details.get("family") or "llama"
    size = details.get("parameter_size") or "1B"
    info = {"general.architecture": arch,
            "general.parameter_count": int(float(size[:-1]) * {"B": 1e9, "M": 1e6}.get(size[-1:], 1)),
            "%s.context_length" % arch: details.get("context_length", 2048),
            "%s.embedding_length" % arch: details.get("embedding_length", 768)}
    return json_reply({"license": "LICENSE AGREEMENT", "modelfile": "# Modelfile generated by \"ollama show\"\n"
                       "FROM %s\n" % entry.get("name"), "parameters": 'stop "<|eot_id|>"',
                       "template": "{{ .Prompt }}", "details": details, "model_info": info,
                       "capabilities": entry.get("capabilities") or [], "modified_at": entry.get("modified_at")})


def _plain(status: int, text: str) -> Callable[["OllamaEmulator", Recorded], Any]:
    return lambda emu, rec: raw_reply(status, text.encode(), "text/plain; charset=utf-8")


ROUTES = {
    "/": {"GET": _plain(200, "Ollama is running"), "HEAD": _plain(200, "Ollama is running")},
    "/api/version": {m: (lambda emu, rec: json_reply({"version": VERSION})) for m in ("GET", "HEAD")},
    "/api/tags": {m: (lambda emu, rec: json_reply({"models": emu.models})) for m in ("GET", "HEAD")},
    "/api/ps": {"GET": lambda emu, rec: json_reply({"models": []})},
    "/api/show": {"POST": _show},
    "/api/chat": {"POST": _chat},
    "/api/generate": {"POST": _generate},
    "/api/embed": {"POST": _embed},
}  # type: Dict[str, Dict[str, Callable[[OllamaEmulator, Recorded], Any]]]


# --- HTTP plumbing ---------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emu = None  # type: OllamaEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a vanished peer is routine here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so requests' pool reuses connections
    disable_nagle_algorithm = True  # one line must leave as soon as it is written
    server = None  # type: _Server

    def setup(self) -> None:
        super().setup()
        self.server.emu._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emu._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        emu = self.server.emu
        split = urlsplit(self.path)
        rec = Recorded(self.command, split.path, self.headers, self._read_body(), split.query, self.client_address)
        reply = emu._accept(rec)
        try:
            reply.send(self, rec)
        finally:
            rec.finished.set()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def start(self, status: int, headers: List[Tuple[str, str]], rec: Recorded) -> bool:
        """Send the status line and headers at once; return False if the peer is gone."""
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for key, value in headers:
            self.send_header(key, value)
        try:
            self.end_headers()
            return True
        except OSError:
            return self._lost(rec)

    def write(self, data: bytes, rec: Recorded) -> bool:
        """Send ``data`` in one write; return False if the peer is gone."""
        try:
            self.wfile.write(data)
            return True
        except OSError:
            return self._lost(rec)

    def wait(self, seconds: Optional[float], rec: Recorded) -> bool:
        """Idle for ``seconds`` (forever if None); return False early if the peer closes or stop() runs."""
        stopping = self.server.emu._stopping
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stopping.is_set():
            left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            if left <= 0:
                return True
            try:
                if select.select([self.connection], [], [], left)[0]:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return self._lost(rec)
                    stopping.wait(left)  # a pipelined request is waiting; do not spin on it
            except (OSError, ValueError):
                return self._lost(rec)
        self.close_connection = True
        return False

    def _lost(self, rec: Recorded) -> bool:
        self.close_connection = True
        if not self.server.emu._stopping.is_set():  # stop() closing the socket is not the peer leaving
            rec.mark_disconnected()
            self.server.emu.closed.set()
        return False

    def abort(self) -> None:
        """Close the connection now (FIN, not RST, so bytes already sent still reach the client)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class OllamaEmulator:
    """A real HTTP server on loopback that answers like Ollama's native API."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, models: Optional[List[Dict[str, Any]]] = None) -> None:
        self.host, self.port = host, port
        self._default_models = copy.deepcopy(DEFAULT_MODELS if models is None else models)
        self.models = copy.deepcopy(self._default_models)
        self.requests = []  # type: List[Recorded]
        self.closed = threading.Event()  # set whenever any request saw its peer leave mid-reply
        self.url = ""
        self._scripts = {}  # type: Dict[str, List[Any]]
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._conns = set()  # type: set
        self._server = None  # type: Optional[_Server]
        self._thread = None  # type: Optional[threading.Thread]

    def start(self) -> "OllamaEmulator":
        if self._server is None:
            self._stopping.clear()
            self._server = _Server((self.host, self.port), _Handler)
            self._server.emu = self
            self.port = self._server.server_address[1]
            self.url = "http://%s:%d" % (self.host, self.port)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL},
                                            name="ollama-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes every wait(); stalls end at once
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections block in readline until their socket shuts
            _shutdown(conn)
        with self._changed:
            self._changed.wait_for(lambda: not self._conns, 2.0)
        if self._thread is not None:
            self._thread.join(2.0)

    def __enter__(self) -> "OllamaEmulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            del self.requests[:]
            self.models = copy.deepcopy(self._default_models)
            self.closed.clear()

    def script(self, path: str, *replies: Any) -> None:
        """Queue replies for the next requests to ``path`` (FIFO); the default behaviour resumes after."""
        for reply in replies:
            if not callable(getattr(reply, "send", None)):
                raise TypeError("not a reply (use json_reply, ndjson_reply, ...): %r" % (reply,))
        with self._lock:
            self._scripts.setdefault(path, []).extend(replies)

    def last(self, path: Optional[str] = None) -> Recorded:
        with self._lock:
            found = [r for r in self.requests if path is None or r.path == path]
            if not found:
                where = " for " + path if path else ""
                raise AssertionError("no request%s recorded; got %r" % (where, self.requests))
            return found[-1]

    def wait_for(self, path: Optional[str] = None, timeout: float = 2.0, count: int = 1) -> Recorded:
        """Return the last request for ``path`` once ``count`` of them arrived; AssertionError on timeout."""
        def arrived() -> bool:
            return sum(1 for r in self.requests if path is None or r.path == path) >= count
        with self._changed:
            if not self._changed.wait_for(arrived, timeout):
                raise AssertionError("fewer than %d request(s) for %s within %ss" % (count, path or "any path", timeout))
        return self.last(path)

    def _accept(self, rec: Recorded) -> Any:
        """Record ``rec`` and return its reply: the next scripted one, else the default route."""
        with self._changed:
            self.requests.append(rec)
            queue = self._scripts.get(rec.path)
            scripted = queue.pop(0) if queue else None
            self._changed.notify_all()
        if scripted is not None:
            return scripted
        methods = ROUTES.get(rec.path)
        if methods is None:  # gin's router answers these in plain text
            return raw_reply(404, b"404 page not found", "text/plain")
        if rec.method not in methods:
            return raw_reply(405, b"405 method not allowed", "text/plain")
        try:
            return methods[rec.method](self, rec)
        except _Fail as failure:
            return failure.reply
        except Exception as exc:  # surface emulator bugs to the test instead of hanging the client
            return error_reply(500, "ollama emulator: %s: %s" % (type(exc).__name__, exc))

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._changed:
            if opened:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
                self._changed.notify_all()
            late = opened and self._stopping.is_set()
        if late:
            _shutdown(conn)


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
