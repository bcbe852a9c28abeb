"""The shipped deployment, for real: gunicorn with deploy/gunicorn.conf.py behind
nginx with deploy/nginx/ollama-gateway.conf, on loopback, against the Ollama
emulator. nginx is installed by `make test`; a missing nginx fails these tests.

Synchronisation is by events (the emulator's ``Recorded.finished`` and
``disconnected``, the client's own) and by polling logs with deadlines.
"""
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import openai
import pytest
import requests

from ..ollama_emulator import NDJSON_TYPE, Reply, chat_line, ndjson_reply, stall_reply
from ..schema_check import assert_matches
from ..servers import Gunicorn
from ..sse import iter_events, iter_lines
from .nginx_server import Nginx, free_port, nginx_binary

pytestmark = pytest.mark.integration

MODEL = "llama3.2"


# -- helpers ---------------------------------------------------------------------------------

def chat(stream: bool = True, **extra: Any) -> Dict[str, Any]:
    return dict({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                 "stream": stream}, **extra)


def paced(words: List[str], delay: float) -> Reply:
    """Return an NDJSON reply writing one word per line, ``delay`` seconds apart."""
    lines = [chat_line(MODEL, word) for word in words]
    lines.append(chat_line(MODEL, done=True, done_reason="stop", prompt_eval_count=1,
                           eval_count=len(words)))
    return ndjson_reply(lines, delay=delay)


def words(count: int) -> List[str]:
    return ["w%d " % i for i in range(count)]


def content(events: List[str]) -> str:
    """Return the text of a stream's content deltas."""
    out = []
    for data in events:
        if data != "[DONE]":
            for choice in json.loads(data).get("choices", []):
                out.append(choice["delta"].get("content") or "")
    return "".join(out)


def stream_events(url: str, body: Dict[str, Any],
                  on_event: Optional[Callable[[str], None]] = None, **kwargs: Any) -> List[str]:
    """Return the data of every SSE event of a streamed chat; ``on_event`` sees each as it comes."""
    events = []
    with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=20,
                       **kwargs) as resp:
        assert resp.status_code == 200, resp.text
        for data in iter_events(iter_lines(resp.iter_content(chunk_size=None))):
            events.append(data)
            if on_event is not None:
                on_event(data)
    return events


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out after %gs waiting for %s" % (timeout, what)
        time.sleep(0.02)  # polling a condition, bounded by the deadline


def address(url: str) -> str:
    return url.split("://", 1)[1]


def wait_ready(url: str) -> None:
    """Wait until the gateway at ``url`` answers HTTP (an empty body: refused, Ollama not asked)."""
    def answers() -> bool:
        try:
            return requests.post(url + "/v1/chat/completions", data=b"", timeout=2).status_code < 500
        except requests.ConnectionError:
            return False
    wait_until(answers, 10, "the gateway at %s to answer" % url)


def booted_pids(log: str) -> List[int]:
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log)]


class Lockstep:
    """An NDJSON reply that writes its next line only once the client has seen the
    previous one, so a proxy that holds back a single line stalls it for good.

    It records when each line was written, for the relay latency.
    """

    def __init__(self, words: List[str], patience: float = 3.0) -> None:
        self.words = words
        self.patience = patience
        self.seen = [threading.Event() for _ in words]
        self.written_at = [0.0] * len(words)
        self.seen_at = [0.0] * len(words)
        self.stalled_at = None  # type: Optional[int]
        self.reply = Reply("lockstep %d lines" % len(words), self._send)

    def saw(self, data: str) -> None:
        """Note an SSE event received by the client."""
        text = content([data])
        if text in self.words:
            i = self.words.index(text)
            self.seen_at[i] = time.monotonic()
            self.seen[i].set()

    def _send(self, handler: Any, rec: Any) -> None:
        if not handler.start(200, [("Content-Type", NDJSON_TYPE),
                                   ("Transfer-Encoding", "chunked")], rec):
            return
        lines = [chat_line(MODEL, word) for word in self.words]
        lines.append(chat_line(MODEL, done=True, done_reason="stop", prompt_eval_count=1,
                               eval_count=len(self.words)))
        for i, line in enumerate(lines):
            data = json.dumps(line).encode() + b"\n"
            if i < len(self.words):
                self.written_at[i] = time.monotonic()
            if not handler.write(b"%X\r\n%s\r\n" % (len(data), data), rec):
                return
            if i < len(self.words) and self.stalled_at is None and not self.seen[i].wait(self.patience):
                self.stalled_at = i  # the client never got line i: something buffers
        handler.write(b"0\r\n\r\n", rec)


# -- servers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_env(emulator, tmp_path_factory) -> Dict[str, str]:
    # XDG_RUNTIME_DIR: a private place for newer gunicorns' control socket.
    return {"OLLAMA_HOST": emulator.url, "OLLAMA_GATEWAY_READ_TIMEOUT": "5",
            "XDG_RUNTIME_DIR": str(tmp_path_factory.mktemp("run"))}


@pytest.fixture(scope="module")
def gateway(base_env, tmp_path_factory):
    """gunicorn with the deploy config, its defaults untouched."""
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", env=base_env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(gateway, tmp_path_factory):
    """nginx with the shipped site in front of ``gateway``."""
    server = Nginx(tmp_path_factory.mktemp("nginx"), address(gateway.url))
    yield server
    server.stop()


def test_nginx_is_installed():
    nginx_binary()


# -- streaming ---------------------------------------------------------------------------------

def test_stream_arrives_chunk_by_chunk_through_nginx(gateway, proxy, ollama, capsys):
    routes = (("nginx", proxy.url), ("gunicorn", gateway.url))
    for _, url in routes:  # warm up: workers booted, nginx's upstream connection open
        wait_ready(url)
    timings = {route: [] for route, _ in routes}  # type: Dict[str, List[Any]]
    for _ in range(5):
        for route, url in routes:
            step = Lockstep(words(5))
            ollama.script("/api/chat", step.reply)
            first = {}  # type: Dict[str, Any]

            def on_event(data: str) -> None:
                if "at" not in first:
                    first["at"] = time.monotonic()
                    first["upstream_finished"] = ollama.last("/api/chat").finished.is_set()
                step.saw(data)

            started = time.monotonic()
            events = stream_events(url, chat(), on_event, headers={"Accept-Encoding": "gzip"})
            assert step.stalled_at is None, ("via %s, line %d never reached the client before the "
                                             "next was due" % (route, step.stalled_at))
            assert first["upstream_finished"] is False
            assert events[-1] == "[DONE]" and content(events) == "".join(step.words)
            relay = [seen - written for seen, written in zip(step.seen_at, step.written_at)]
            timings[route].append((first["at"] - started, statistics.median(relay)))

    with capsys.disabled():
        print("\nmedian of 5 streams: request -> first chunk; Ollama writes a line -> client has it")
        for route, runs in timings.items():
            print("  %-8s %6.2f ms   %5.2f ms" % (
                route, statistics.median(r[0] for r in runs) * 1e3,
                statistics.median(r[1] for r in runs) * 1e3))


def test_stream_headers_through_nginx(proxy, ollama):
    with requests.post(proxy.url + "/v1/chat/completions", json=chat(), stream=True, timeout=20,
                       headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        # The http block gzips event streams; the site's location turns that off.
        assert "Content-Encoding" not in resp.headers
        # nginx consumes X-Accel-Buffering and does not forward it.
        assert "X-Accel-Buffering" not in resp.headers
        events = list(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
    assert events[-1] == "[DONE]"


def test_stream_longer_than_gunicorn_timeout_completes(base_env, ollama, tmp_path):
    server = Gunicorn(tmp_path / "gunicorn.log", env=base_env, args=["--timeout", "2"])
    try:
        ollama.script("/api/chat", paced(words(9), delay=0.5))
        started = time.monotonic()
        events = stream_events(server.url, chat())
        lasted = time.monotonic() - started
        assert events[-1] == "[DONE]" and content(events) == "".join(words(9))
        assert lasted > 2 * 2  # the stream outlived the worker timeout twice over
        assert "WORKER TIMEOUT" not in server.log()
    finally:
        server.stop()


def test_client_disconnect_through_nginx_closes_upstream(proxy, ollama, capsys):
    # 100 lines 0.2 s apart: 20 s if nobody hangs up. The gateway notices a gone
    # client at its next write, so the pace bounds how soon it can react.
    ollama.script("/api/chat", paced(words(100), delay=0.2))
    body = json.dumps(chat()).encode()
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway.test\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        received = b""
        while b"data: " not in received:
            piece = sock.recv(65536)
            assert piece, "nginx closed the connection: %r" % received
            received += piece
        assert received.startswith(b"HTTP/1.1 200")
    finally:
        closed_at = time.monotonic()
        sock.close()
    upstream = ollama.last("/api/chat")
    assert upstream.disconnected.wait(1.5), "the gateway was still reading from Ollama 1.5 s later"
    with capsys.disabled():
        print("\nclient gone -> Ollama connection closed: %.0f ms"
              % ((upstream.disconnected_at - closed_at) * 1e3))


def test_graceful_reload_drops_no_stream(base_env, ollama, tmp_path):
    server = Gunicorn(tmp_path / "gunicorn.log", env=dict(base_env, OLLAMA_GATEWAY_WORKERS="2"))
    proxy = Nginx(tmp_path / "nginx", address(server.url))
    try:
        wait_until(lambda: len(booted_pids(server.log())) >= 2, 10, "two workers")
        old_workers = booted_pids(server.log())
        count, text = 4, words(12)
        ollama.script("/api/chat", *[paced(text, delay=0.25) for _ in range(count)])
        started = [threading.Event() for _ in range(count)]
        results = [None] * count  # type: List[Any]

        def run(i: int) -> None:
            try:
                results[i] = stream_events(proxy.url, chat(), lambda data: started[i].set())
            except Exception as exc:  # reported by the assertions below
                results[i] = exc
                started[i].set()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for event in started:
            assert event.wait(10), "a stream did not start"

        os.kill(server.proc.pid, signal.SIGHUP)
        wait_until(lambda: "Handling signal: hup" in server.log(), 5, "gunicorn to take the HUP")
        upstreams = [r for r in ollama.requests if r.path == "/api/chat"]
        assert len(upstreams) == count
        assert not any(r.finished.is_set() for r in upstreams), "the streams ended before the reload"

        for thread in threads:
            thread.join(20)
        for result in results:
            assert not isinstance(result, Exception), result
            assert result[-1] == "[DONE]" and content(result) == "".join(text)

        # The old workers finished their streams, then left; new ones serve.
        log_text = server.log
        wait_until(lambda: all("Worker exiting (pid: %d)" % pid in log_text() for pid in old_workers),
                   10, "the old workers to exit")
        assert len(booted_pids(server.log())) >= 4
        assert stream_events(proxy.url, chat())[-1] == "[DONE]"
    finally:
        proxy.stop()
        server.stop()


def test_gevent_worker_streams(base_env, ollama, tmp_path):
    if importlib.util.find_spec("gevent") is None:  # never a skip: the test extra installs it
        pytest.fail("gevent is missing: install the test extra, pip install -e '.[test]'")

    server = Gunicorn(tmp_path / "gunicorn.log", env=dict(
        base_env, OLLAMA_GATEWAY_WORKER_CLASS="gevent", OLLAMA_GATEWAY_WORKERS="1"))
    try:
        wait_until(lambda: "Using worker: gevent" in server.log(), 10, "the gevent worker")
        # Two streams at once in one process: with sockets left blocking (not
        # monkey-patched), the second would start only after the first ended.
        text = words(6)
        ollama.script("/api/chat", paced(text, delay=0.3), paced(text, delay=0.3))
        started = [threading.Event(), threading.Event()]
        results = [None, None]  # type: List[Any]

        def run(i: int) -> None:
            try:
                results[i] = stream_events(server.url, chat(), lambda data: started[i].set())
            except Exception as exc:
                results[i] = exc
                started[i].set()

        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
        for thread in threads:
            thread.start()
        for event in started:
            assert event.wait(10), "a stream did not start"
        upstreams = [r for r in ollama.requests if r.path == "/api/chat"]
        assert len(upstreams) == 2 and not any(r.finished.is_set() for r in upstreams)
        for thread in threads:
            thread.join(20)
        for result in results:
            assert not isinstance(result, Exception), result
            assert result[-1] == "[DONE]" and content(result) == "".join(text)
        assert "Traceback" not in server.log()
    finally:
        server.stop()


# -- logs ----------------------------------------------------------------------------------------

def test_access_log_has_request_id_status_and_duration(gateway, proxy, ollama):
    given = requests.post(proxy.url + "/v1/chat/completions", json=chat(stream=False),
                          headers={"X-Request-Id": "deploy-test-rid-1"}, timeout=20)
    assert given.status_code == 200 and given.headers["X-Request-Id"] == "deploy-test-rid-1"
    # Without one, nginx makes one up and the gateway adopts it.
    made = requests.post(proxy.url + "/v1/chat/completions", json=chat(stream=False), timeout=20)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    for rid in ("deploy-test-rid-1", made.headers["X-Request-Id"]):
        line = re.compile(r'^127\.0\.0\.1 127\.0\.0\.1 "POST /v1/chat/completions HTTP/1\.1" '
                          r'200 \S+ \d+ms rid=%s$' % re.escape(rid), re.M)
        wait_until(lambda: line.search(gateway.log()) is not None, 5,
                   "an access log line for %s in:\n%s" % (rid, gateway.log()[-2000:]))


# -- nginx's own errors ----------------------------------------------------------------------

def image_message(size: int) -> List[Dict[str, Any]]:
    url = "data:image/png;base64," + "A" * size
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


def test_large_image_passes_and_oversize_body_is_openai_413(proxy, ollama):
    with openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0,
                       timeout=30) as sdk:
        # Far above nginx's default limit (1m): passes with the shipped 32m.
        ok = sdk.chat.completions.create(model="llava", messages=image_message(4 * 1024 * 1024))
        assert ok.choices[0].message.content
        assert len(ollama.requests) == 1
        with pytest.raises(openai.APIStatusError) as info:
            sdk.chat.completions.create(model="llava", messages=image_message(33 * 1024 * 1024))
    error = info.value
    assert error.status_code == 413
    assert error.response.headers["content-type"] == "application/json"
    assert error.response.headers["x-should-retry"] == "false"
    assert_matches("error", error.response.json())
    assert (error.type, error.code) == ("invalid_request_error", "request_too_large")
    assert "client_max_body_size" in error.message  # nginx answered, not the gateway
    assert len(ollama.requests) == 1


def test_nginx_502_when_gunicorn_is_down_is_openai_json(tmp_path):
    proxy = Nginx(tmp_path, "127.0.0.1:%d" % free_port())  # nothing listens there
    try:
        with openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0,
                           timeout=20) as sdk:
            with pytest.raises(openai.InternalServerError) as info:
                sdk.chat.completions.create(model=MODEL, messages=chat()["messages"])
    finally:
        proxy.stop()
    error = info.value
    assert error.status_code == 502
    assert error.response.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", error.response.headers["x-request-id"])
    assert_matches("error", error.response.json())
    assert (error.type, error.code) == ("server_error", "gateway_unreachable")


def test_nginx_504_is_openai_json(gateway, ollama, tmp_path):
    # The shipped proxy_read_timeout is minutes; 1 s here, with a silent Ollama.
    proxy = Nginx(tmp_path, address(gateway.url), directives={"proxy_read_timeout": "1s"})
    try:
        ollama.script("/api/chat", stall_reply(1.5))
        resp = requests.post(proxy.url + "/v1/chat/completions", json=chat(stream=False),
                             timeout=20)
    finally:
        proxy.stop()
    assert resp.status_code == 504
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["X-Should-Retry"] == "false"
    assert_matches("error", resp.json())
    assert resp.json()["error"]["code"] == "gateway_timeout"
