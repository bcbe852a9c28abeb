"""A streaming load client: keep-alive connections that post a body and time each stream.

Run by the benchmark as a subprocess (several of them, so the client never
runs out of CPU)::

    python tests/perf/streamload.py '<json config>'

It prints ``ready``, waits for one line on stdin, runs, and prints one JSON
object: a record per stream ``[first_event_s, total_s, events, ok]`` and the
client's own CPU seconds. An event is an SSE frame (``kind: "sse"``, chat
completions, or ``kind: "responses"``, the Responses API; each ends with a blank
line) or an NDJSON line (``kind: "ndjson"``, the direct runs). A stream is
``ok`` when its status is 200, its body is complete, it has at least
``min_events`` events, the last is ``data: [DONE]`` (chat), an
``event: response.completed`` frame (Responses) or a ``"done":true`` line
(NDJSON), and no event carries an error.

The first event is the first complete frame, except for ``"responses"``: there
it is the first complete ``event: response.output_text.delta`` frame, the
first token, as chat's first frame and Ollama's first line carry the first
token (the ``response.created`` ... ``content_part.added`` frames before it
come out of the same upstream line, so they are not earlier by a network
round trip, only by the bytes in front of it).

The HTTP/1.1 response parser is incremental, so the first event is timed when
its bytes arrive, not after a library buffers them. One connection runs on a
blocking socket (asyncio would add ~0.25 ms to every first event); several run
as asyncio protocols in one event loop.
"""
import asyncio
import json
import resource
import socket
import sys
import time
from typing import Any, Dict, List, Optional

Record = List[Any]
KINDS = ("sse", "responses", "ndjson")
_FIRST_MARK = b"event: response.output_text.delta\n"
_COMPLETED = b"event: response.completed\n"
_BAD = (b"event: error\n", b"event: response.failed\n", b"event: response.incomplete\n")


class Response:
    """One response being received: feed it bytes until :meth:`feed` returns True."""

    def __init__(self, kind: str, min_events: int) -> None:
        self.kind = kind
        self.sep = b"\n" if kind == "ndjson" else b"\n\n"
        # Responses: the first event counted is the first text delta frame.
        self.mark = _FIRST_MARK if kind == "responses" else b""
        self.scan = 0  # where to look for ``mark`` next
        self.min_events = min_events
        self.started = time.perf_counter()
        self.first = 0.0
        self.buf = b""
        self.body = bytearray()
        self.status = 0
        self.head_done = False
        self.chunked = False
        self.length = -1
        self.keep = True
        self.complete = False

    def feed(self, data: bytes) -> bool:
        """Return whether the response is complete after ``data``."""
        self.buf += data
        if not self.head_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            lines = self.buf[:end].lower().split(b"\r\n")
            self.buf = self.buf[end + 4:]
            self.head_done = True
            self.status = int(lines[0].split()[1])
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                value = value.strip()
                if name == b"transfer-encoding":
                    self.chunked = value == b"chunked"
                elif name == b"content-length":
                    self.length = int(value)
                elif name == b"connection":
                    self.keep = value != b"close"
        if self.chunked:
            self._chunks()
        else:
            self._append(self.buf)
            self.buf = b""
            self.complete = 0 <= self.length <= len(self.body)
        return self.complete

    def _chunks(self) -> None:
        buf, pos = self.buf, 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol].split(b";")[0], 16)
            end = eol + 2 + size
            if len(buf) < end + 2:
                break
            if size == 0:
                self.complete = True
                pos = end + 2
                break
            self._append(buf[eol + 2:end])
            pos = end + 2
        self.buf = buf[pos:]

    def _append(self, piece: bytes) -> None:
        tail = len(self.body) - len(self.sep) + 1
        self.body += piece
        if self.first:
            return
        if not self.mark:
            if self.body.find(self.sep, max(tail, 0)) >= 0:
                self.first = time.perf_counter()
            return
        at = self.body.find(self.mark, self.scan)
        if at < 0:
            # The marker may straddle this piece and the next.
            self.scan = max(0, len(self.body) - len(self.mark) + 1)
            return
        self.scan = at  # found; the frame is complete once its blank line is in
        if self.body.find(self.sep, at + len(self.mark)) >= 0:
            self.first = time.perf_counter()

    def record(self) -> Record:
        """Return ``[first_event_s, total_s, events, ok]``."""
        now = time.perf_counter()
        events = [e for e in bytes(self.body).split(self.sep) if e.strip()]
        ok = self.complete and self.status == 200 and len(events) >= self.min_events
        if ok and self.kind == "sse":
            ok = events[-1] == b"data: [DONE]" and not any(
                e.startswith(b'data: {"error"') for e in events)
        elif ok and self.kind == "responses":
            # The terminal event is response.completed; response.failed,
            # response.incomplete, an error event or a cut-off stream are not.
            ok = events[-1].startswith(_COMPLETED) and not any(
                e.startswith(_BAD) for e in events)
        elif ok:
            ok = b'"done":true' in events[-1] and not any(b'"error"' in e for e in events)
        return [(self.first or now) - self.started, now - self.started, len(events), ok]


def _limit(cfg: Dict[str, Any]) -> int:
    return cfg.get("per_conn") or (1 << 30)


def run_blocking(cfg: Dict[str, Any], raw: bytes) -> List[Record]:
    """Return the records of one connection on a blocking socket."""
    out = []  # type: List[Record]
    deadline = time.perf_counter() + cfg["duration"]
    sock = None  # type: Optional[socket.socket]
    while time.perf_counter() < deadline and len(out) < _limit(cfg):
        if sock is None:
            sock = socket.create_connection((cfg["host"], cfg["port"]),
                                            timeout=cfg.get("timeout", 60))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        resp = Response(cfg["kind"], cfg["min_events"])
        try:
            sock.sendall(raw)
            while True:
                data = sock.recv(65536)
                if not data or resp.feed(data):
                    break
        except OSError:
            pass
        record = resp.record()
        out.append(record)
        if not record[3] or not resp.keep:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    return out


class _Conn(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` resolves with the stream's record."""

    def __init__(self, kind: str, min_events: int) -> None:
        self.kind = kind
        self.min_events = min_events
        self.transport = None  # type: Any
        self.closed = asyncio.get_running_loop().create_future()
        self.waiter = None  # type: Optional[asyncio.Future]
        self.resp = None  # type: Optional[Response]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.resp.record())

    def request(self, raw: bytes) -> "asyncio.Future[Record]":
        self.waiter = asyncio.get_running_loop().create_future()
        self.resp = Response(self.kind, self.min_events)
        self.transport.write(raw)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            return
        if self.resp.feed(data):
            self.waiter.set_result(self.resp.record())
            if not self.resp.keep:
                self.transport.close()


async def _worker(cfg: Dict[str, Any], raw: bytes, deadline: float, out: List[Record]) -> None:
    loop = asyncio.get_running_loop()
    conn = None  # type: Optional[_Conn]
    done = 0
    while time.perf_counter() < deadline and done < _limit(cfg):
        if conn is None or conn.closed.done():
            try:
                _, conn = await loop.create_connection(
                    lambda: _Conn(cfg["kind"], cfg["min_events"]), cfg["host"], cfg["port"])
            except OSError:
                out.append([0.0, 0.0, 0, False])
                done += 1
                await asyncio.sleep(0.01)
                continue
        try:
            record = await asyncio.wait_for(conn.request(raw), cfg.get("timeout", 60))
        except asyncio.TimeoutError:
            record = conn.resp.record()
        out.append(record)
        done += 1
        if not record[3] and not conn.closed.done():
            conn.transport.close()  # out of sync after a failure: start afresh
    if conn is not None:
        conn.transport.close()


async def run_async(cfg: Dict[str, Any], raw: bytes) -> List[Record]:
    """Return the records of ``cfg["conns"]`` connections in one event loop."""
    out = []  # type: List[Record]
    deadline = time.perf_counter() + cfg["duration"]
    await asyncio.gather(*[_worker(cfg, raw, deadline, out) for _ in range(cfg["conns"])])
    return out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if cfg["kind"] not in KINDS:
        raise SystemExit("streamload: unknown kind %r (expected one of %s)"
                         % (cfg["kind"], ", ".join(KINDS)))
    body = cfg["body"].encode()
    raw = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
           "Accept: %s\r\nContent-Length: %d\r\n\r\n"
           % (cfg["path"], cfg["port"], "application/x-ndjson" if cfg["kind"] == "ndjson"
              else "text/event-stream", len(body))).encode() + body
    print("ready", flush=True)
    sys.stdin.readline()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    records = run_blocking(cfg, raw) if cfg["conns"] == 1 else asyncio.run(run_async(cfg, raw))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    json.dump({"records": records, "wall_s": wall, "cpu_s": cpu}, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
