"""A fast fake Ollama for the benchmark: stdlib asyncio, one process, zero delay.

``python tests/perf/backend.py [--port 0] [--delay-ms 0]`` prints
``listening on 127.0.0.1:<port>`` once it accepts connections.

It answers ``POST /api/chat`` the way Ollama does: a JSON reply, or (with
``"stream": true``, Ollama's default) NDJSON written one HTTP chunk per line
with ``Transfer-Encoding: chunked``, ending with a ``done`` line carrying the
metrics. Each stream line is ~150 bytes, like a real ``llama3.2`` reply. How
long a stream is and how fast it comes are read from the request, because the
gateway forwards the body but not the client's headers:

* chunks: ``X-Bench-Chunks`` header, else ``chunks=<N>`` in the body, else 200;
* pace: ``X-Bench-Delay-Ms`` header, else ``delay_ms=<ms>`` in the body, else
  ``--delay-ms``. Paced lines are sent one by one; at zero delay the first
  line goes out alone and the rest in bursts of 16 lines (one HTTP chunk per
  line still), which keeps the backend several times cheaper than the gateway.

``GET /bench/last-chat`` returns the body of the last ``/api/chat`` request,
so the benchmark can send the backend exactly what the gateway sends;
``GET /bench/stats`` the connections accepted and requests answered so far
(how well the gateway reuses its upstream connections).

The HTTP/1.1 parser is hand-written and minimal (Content-Length bodies,
keep-alive, ``Connection: close``): enough for ``requests``, ``wrk`` and the
benchmark's own client, and fast enough never to be the bottleneck, which the
benchmark measures in every run rather than assumes.
"""
import argparse
import asyncio
import functools
import json
import re
import sys
import time
from typing import Dict, List, Optional, Tuple

_CHUNKS = re.compile(rb"chunks=(\d+)")
_DELAY = re.compile(rb"delay_ms=(\d+(?:\.\d+)?)")
DEFAULT_CHUNKS = 200
MAX_CHUNKS = 100000
MAX_BODY = 64 * 1024 * 1024
BURST = 16

# Pre-escaped JSON string bodies, cycled through as the "tokens" of a reply.
_TOKENS = [json.dumps(word)[1:-1] for word in (
    " The", " gateway", " adds", " as", " little", " as", " it", " can", ":", " it",
    " validates", " the", " request", ",", " translates", " it", " and", " relays",
    " every", " token", " the", " moment", " it", " arrives", ".", "\n",
    " Streaming", " keeps", " the", " first", " word", " fast", ".")]
_REPLY = "".join(json.loads('"%s"' % t) for t in _TOKENS) * 2


class _Clock:
    """Ollama's RFC 3339 ``created_at`` with nanoseconds, cheap per line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        seconds, nanos = divmod(time.time_ns(), 1000000000)
        if seconds != self._second:
            self._second = seconds
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        return "%s%09dZ" % (self._prefix, nanos)


CLOCK = _Clock()


def _model_json(raw: bytes) -> Tuple[Optional[dict], str]:
    """Return the decoded body and its model as escaped JSON text (not quoted)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None, ""
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
        return None, ""
    return doc, json.dumps(doc["model"])[1:-1]


def _metrics(chunks: int) -> str:
    """Return the metrics members of a final line (Ollama's names and units)."""
    return ('"total_duration":%d,"load_duration":%d,"prompt_eval_count":26,'
            '"prompt_eval_duration":%d,"eval_count":%d,"eval_duration":%d'
            % (1234567 + 26000000 + chunks * 25000000 + 5000000, 1234567, 26000000,
               chunks, chunks * 25000000))


def chat_reply(model: str) -> bytes:
    """Return a non-streaming native ``/api/chat`` reply body."""
    return ('{"model":"%s","created_at":"%s","message":{"role":"assistant","content":%s},'
            '"done_reason":"stop","done":true,%s}'
            % (model, CLOCK.now(), json.dumps(_REPLY), _metrics(len(_TOKENS) * 2))).encode()


@functools.lru_cache(maxsize=64)
def _line_parts(model: str) -> List[Tuple[bytes, bytes]]:
    """Return, per token, the bytes before and after ``created_at`` of its HTTP chunk.

    The timestamp always has the same length, so each chunk's size is known
    in advance and a line costs two concatenations, not a formatting pass.
    """
    size = len(CLOCK.now())
    parts = []
    for token in _TOKENS:
        head = '{"model":"%s","created_at":"' % model
        tail = ('","message":{"role":"assistant","content":"%s"},"done":false}\n' % token)
        length = len(head.encode()) + size + len(tail.encode())
        parts.append((b"%x\r\n" % length + head.encode(), tail.encode() + b"\r\n"))
    return parts


def stream_lines(model: str, start: int, stop: int) -> bytes:
    """Return stream lines ``start`` to ``stop`` (excluded), one HTTP chunk each."""
    parts = _line_parts(model)
    now = CLOCK.now().encode()
    return b"".join([parts[i % len(parts)][0] + now + parts[i % len(parts)][1]
                     for i in range(start, stop)])


def final_line(model: str, chunks: int) -> bytes:
    """Return the ``done`` line as one HTTP chunk, followed by the last chunk."""
    line = ('{"model":"%s","created_at":"%s","message":{"role":"assistant","content":""},'
            '"done_reason":"stop","done":true,%s}\n'
            % (model, CLOCK.now(), _metrics(chunks))).encode()
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(line), line)


def _head(status: str, content_type: str, extra: str = "") -> bytes:
    return ("HTTP/1.1 %s\r\nContent-Type: %s\r\nDate: %s\r\n%s"
            % (status, content_type, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
               extra)).encode()


def _simple(status: str, content_type: str, body: bytes) -> bytes:
    return _head(status, content_type, "Content-Length: %d\r\n\r\n" % len(body)) + body


def _option(headers: Dict[bytes, bytes], body: bytes, name: bytes, pattern: "re.Pattern[bytes]",
            default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        match = pattern.search(body)
        raw = match.group(1) if match else None
    return default if raw is None else float(raw)


class Backend:
    """The server: one coroutine per connection, requests answered in order."""

    def __init__(self, delay_ms: float = 0.0) -> None:
        self.delay_ms = delay_ms
        self.requests = 0
        self.connections = 0
        self.last_chat = b"{}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; return whether the connection stays open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return False  # the client closed an idle keep-alive connection
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            writer.write(_simple("400 Bad Request", "text/plain", b"bad request line"))
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"transfer-encoding" in headers:
            writer.write(_simple("411 Length Required", "text/plain", b"send Content-Length"))
            return False
        length = int(headers.get(b"content-length", b"0"))
        if length > MAX_BODY:
            writer.write(_simple("413 Payload Too Large", "text/plain", b"too large"))
            return False
        body = await reader.readexactly(length) if length else b""
        keep = version == b"HTTP/1.1" and headers.get(b"connection", b"").lower() != b"close"
        self.requests += 1
        path = target.split(b"?")[0]
        if path == b"/api/chat" and method == b"POST":
            self.last_chat = body
            await self._chat(writer, headers, body)
        elif path == b"/bench/last-chat" and method == b"GET":
            writer.write(_simple("200 OK", "application/json", self.last_chat))
        elif path == b"/bench/stats" and method == b"GET":
            writer.write(_simple("200 OK", "application/json", json.dumps(
                {"connections": self.connections, "requests": self.requests}).encode()))
        elif path in (b"/", b"/api/version") and method in (b"GET", b"HEAD"):
            text = b"Ollama is running" if path == b"/" else b'{"version":"0.12.0"}'
            writer.write(_simple("200 OK", "text/plain; charset=utf-8" if path == b"/"
                                 else "application/json; charset=utf-8", text))
        else:
            writer.write(_simple("404 Not Found", "text/plain", b"404 page not found"))
        await writer.drain()
        return keep

    async def _chat(self, writer: asyncio.StreamWriter, headers: Dict[bytes, bytes],
                    body: bytes) -> None:
        doc, model = _model_json(body)
        if doc is None:
            writer.write(_simple("400 Bad Request", "application/json; charset=utf-8",
                                 b'{"error":"invalid request body"}'))
            return
        if not doc.get("stream", True):
            writer.write(_simple("200 OK", "application/json; charset=utf-8", chat_reply(model)))
            return
        chunks = int(min(_option(headers, body, b"x-bench-chunks", _CHUNKS, DEFAULT_CHUNKS),
                         MAX_CHUNKS))
        delay = _option(headers, body, b"x-bench-delay-ms", _DELAY, self.delay_ms) / 1000.0
        writer.write(_head("200 OK", "application/x-ndjson", "Transfer-Encoding: chunked\r\n\r\n"))
        if delay:
            for index in range(chunks):
                # One write per line: a real Ollama flushes every token on its own.
                await asyncio.sleep(delay)
                writer.write(stream_lines(model, index, index + 1))
        else:
            # The first line goes out on its own, the rest in bursts of BURST
            # lines (still one HTTP chunk each) with a yield in between, so one
            # long stream neither costs a send per line nor holds back every
            # other connection's first line.
            writer.write(stream_lines(model, 0, 1))
            for start in range(1, chunks, BURST):
                await writer.drain()
                await asyncio.sleep(0)
                # The lines of a burst share a timestamp: they leave together.
                writer.write(stream_lines(model, start, min(start + BURST, chunks)))
        if delay:
            await asyncio.sleep(delay)
        writer.write(final_line(model, chunks))


async def _main(host: str, port: int, delay_ms: float) -> None:
    backend = Backend(delay_ms)
    server = await asyncio.start_server(backend.serve, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print("listening on %s:%d" % (bound[0], bound[1]), flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="default pause before each stream line")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.host, args.port, args.delay_ms))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
