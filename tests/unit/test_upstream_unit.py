"""The upstream client's edges against real loopback sockets, on this interpreter's urllib3.

The stream reader (``ollama_gateway.ndjson_body``) reads private attributes of
urllib3 and http.client; these tests prove them on whichever urllib3 is
installed, so running them on the newest deps and under ``tox -e oldest``
(urllib3 1.26) covers both major versions. A scripted raw server writes exact
bytes, so "what arrived with the headers" and "one TLS record" are certain;
threading events, never sleeps, order the two sides.
"""
import http.client
import socket
import ssl
import threading
from typing import Callable, List

import pytest
import urllib3
from urllib3 import exceptions as u3

from ollama_gateway.config import ConfigError, load_settings
from ollama_gateway.errors import UpstreamError, UpstreamTimeout, UpstreamUnreachable
from ollama_gateway.ndjson_body import NDJSONBody
from ollama_gateway.upstream import OllamaClient, close_response

from ..tls_certs import make_cert, server_context

WAIT = 10.0  # bound on every event wait: a hang fails instead of blocking the suite


class RawServer:
    """Accepts connections and runs ``script(conn, server)`` for each request on them."""

    def __init__(self, script: Callable[[socket.socket, "RawServer"], bool],
                 context: "ssl.SSLContext" = None) -> None:
        self.script = script
        self.release = threading.Event()
        self.connections = 0
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._context = context
        scheme = "https" if context else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self._sock.getsockname()[1])
        self._threads = []  # type: List[threading.Thread]
        self._conns = []  # type: List[socket.socket]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
            self._conns.append(conn)
            conn.settimeout(WAIT)
            reader = conn.makefile("rb")
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                          if h.lower().startswith(b"content-length:")]
                if length:
                    reader.read(length[0])
                self.requests += 1
                if not self.script(conn, self):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def wait_release(self) -> None:
        assert self.release.wait(WAIT), "the test never released the server"

    def close(self) -> None:
        self.release.set()
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(WAIT)


def chunk(data: bytes) -> bytes:
    return b"%X\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def lines(count: int, size: int = 40) -> List[bytes]:
    return [b'{"n":%d,"pad":"%s"}' % (i, b"x" * size) for i in range(count)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"), "server")


@pytest.fixture
def raw_server(tls):
    servers = []

    def start(script, use_tls=False):
        server = RawServer(script, server_context(tls) if use_tls else None)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


def client_for(server: RawServer, tls, read_timeout: float = 2.0) -> OllamaClient:
    return OllamaClient(server.url, connect_timeout=2, read_timeout=read_timeout,
                        ca_bundle=str(tls.cert) if server.url.startswith("https") else None)


def collect(body: NDJSONBody, want: int, idle=None) -> List[bytes]:
    out = []  # type: List[bytes]
    for batch in body.batches(idle):
        out.extend(batch)
        if len(out) >= want:
            break
    return out


def test_private_attributes_the_reader_relies_on(raw_server, tls):
    def script(conn, server):
        conn.sendall(CHUNKED_HEAD + chunk(b'{"a":1}\n') + b"0\r\n\r\n")
        return True
    server = raw_server(script)
    resp = client_for(server, tls).open_stream("/api/chat", {})
    assert isinstance(resp._fp, http.client.HTTPResponse)
    assert resp._fp.chunked is True and resp._fp.length is None
    assert isinstance(resp._fp.fp.raw, socket.SocketIO)
    assert resp._fp.fp.raw._sock is resp.connection.sock
    resp.close()


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("count", [2, 200], ids=["few", "past-8KiB"])
def test_lines_that_came_with_the_headers_need_no_more_data(raw_server, tls, use_tls, count):
    """One write (over TLS: one record, up to 16 KiB) holds the headers and every line.

    http.client buffers 8 KiB of it, TLS keeps the rest decrypted (poll() does
    not see it): both must be read before the socket is polled, or this
    waits for the read timeout.
    """
    sent = lines(count)
    payload = CHUNKED_HEAD + b"".join(chunk(line + b"\n") for line in sent)
    assert len(payload) < 16000  # one TLS record

    def script(conn, server):
        conn.sendall(payload)
        server.wait_release()
        conn.sendall(b"0\r\n\r\n")
        return True
    server = raw_server(script, use_tls)
    resp = client_for(server, tls).open_stream("/api/chat", {})
    body = NDJSONBody(resp, 2.0)
    assert collect(body, count) == sent
    assert not body.complete
    server.release.set()
    assert body.finish(WAIT)
    close_response(resp, True)


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_connection_close_answer_is_read_to_eof(raw_server, tls, use_tls):
    """A proxy's answer: ``Connection: close``, no length, no chunking."""
    sent = lines(300)

    def script(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for line in sent:
            conn.sendall(line + b"\n")
        return False
    server = raw_server(script, use_tls)
    resp = client_for(server, tls).open_stream("/api/chat", {})
    assert resp.connection.sock is None  # why the reader takes fp.raw._sock
    body = NDJSONBody(resp, 2.0)
    assert [line for batch in body.batches() for line in batch] == sent
    assert body.complete


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_read_bodies_leave_the_connection_reusable(raw_server, tls, use_tls):
    sent = lines(3)
    fixed = b"".join(line + b"\n" for line in sent)

    def script(conn, server):
        if server.requests % 2:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(fixed))
            conn.sendall(fixed)
        else:
            conn.sendall(CHUNKED_HEAD)
            conn.sendall(b"".join(chunk(line + b"\n") for line in sent) + b"0\r\n\r\n")
        return True
    server = raw_server(script, use_tls)
    client = client_for(server, tls)
    for _ in range(4):
        resp = client.open_stream("/api/chat", {})
        body = NDJSONBody(resp, 2.0)
        assert [line for batch in body.batches() for line in batch] == sent
        assert body.complete and body.finish(0)
        close_response(resp, True)
    assert (server.requests, server.connections) == (4, 1)


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_silence_yields_keepalive_batches_then_lines(raw_server, tls, use_tls):
    """Nothing came with the headers: over TLS the first, non-blocking read
    finds no record (SSLWantReadError), which must mean "poll", not "broken"."""
    def script(conn, server):
        conn.sendall(CHUNKED_HEAD)
        server.wait_release()
        conn.sendall(chunk(b'{"late":1}\n') + b"0\r\n\r\n")
        return True
    server = raw_server(script, use_tls)
    resp = client_for(server, tls).open_stream("/api/chat", {})
    batches = NDJSONBody(resp, 2.0).batches(idle=0.02)
    assert next(batches) == []
    server.release.set()
    assert [b for b in batches if b] == [[b'{"late":1}']]
    close_response(resp, True)


def test_mid_stream_silence_is_a_timeout(raw_server, tls):
    def script(conn, server):
        conn.sendall(CHUNKED_HEAD + chunk(b'{"a":1}\n'))
        server.wait_release()
        return False
    server = raw_server(script)
    stream = client_for(server, tls, read_timeout=0.2).start_stream("/api/chat", {},
                                                                    background=False)
    batches = stream.batches()
    assert next(batches) == [b'{"a":1}']
    with pytest.raises(UpstreamTimeout):
        next(batches)
    stream.close()


@pytest.mark.parametrize("use_tls", [False, True], ids=["tcp", "tls"])
def test_stream_cut_mid_chunk_is_a_non_retryable_upstream_error(raw_server, tls, use_tls):
    def script(conn, server):
        conn.sendall(CHUNKED_HEAD + chunk(b'{"a":1}\n') + b"100\r\n{\"b\":")
        return False  # the connection closes mid-chunk
    server = raw_server(script, use_tls)
    stream = client_for(server, tls).start_stream("/api/chat", {}, background=False)
    with pytest.raises(UpstreamError) as caught:
        list(stream.batches())
    assert (caught.value.code, caught.value.retryable) == ("upstream_error", False)
    stream.close()


@pytest.mark.parametrize("reply, error, code", [
    pytest.param(b"", UpstreamUnreachable, "upstream_unreachable", id="closed-before-status"),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50"
                 b"\r\n\r\n{\"model\":", UpstreamError, "upstream_error", id="cut-body"),
    pytest.param(CHUNKED_HEAD + b"40\r\n{\"model\":", UpstreamError, "upstream_error",
                 id="cut-chunked-body"),
])
def test_non_streamed_failures_split_at_the_status_line(raw_server, tls, reply, error, code):
    def script(conn, server):
        conn.sendall(reply)
        return False
    server = raw_server(script)
    with pytest.raises(error) as caught:
        client_for(server, tls).post_json("/api/chat", {})
    assert type(caught.value) is error and caught.value.code == code


def _bare(cls):
    """Return an instance of an exception class without running its (varying) __init__."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, "boom")
    return exc


URLLIB3_ERRORS = sorted((c for c in vars(u3).values() if isinstance(c, type)
                         and issubclass(c, u3.HTTPError)), key=lambda c: c.__name__)


@pytest.mark.parametrize("answered", [False, True], ids=["before-status", "after-status"])
@pytest.mark.parametrize("cls", URLLIB3_ERRORS, ids=lambda c: c.__name__)
def test_every_urllib3_error_is_mapped(cls, answered):
    error = OllamaClient("http://127.0.0.1:9")._error_for(_bare(cls), answered)
    assert error is not None and error.status in (502, 504)


@pytest.mark.parametrize("exc, answered, status, code, retry", [
    pytest.param(u3.NewConnectionError(None, "refused"), False, 502, "upstream_unreachable",
                 True, id="refused"),
    pytest.param(u3.ConnectTimeoutError(None, "slow"), False, 502, "upstream_unreachable",
                 True, id="connect-timeout"),
    pytest.param(u3.ProxyError("Unable to connect to proxy", OSError("refused")), False, 502,
                 "upstream_unreachable", True, id="proxy"),
    pytest.param(u3.ProtocolError("aborted", ConnectionResetError()), False, 502,
                 "upstream_unreachable", True, id="reset-before-status"),
    pytest.param(u3.SSLError("handshake"), False, 502, "upstream_unreachable", True,
                 id="tls-handshake"),
    pytest.param(u3.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
                 False, 502, "upstream_tls_error", False, id="tls-verify"),
    pytest.param(u3.ReadTimeoutError(None, "/", "slow"), False, 504, "upstream_timeout", False,
                 id="no-status-in-time"),
    pytest.param(u3.HostChangedError(None, "/", 0), False, 502, "upstream_error", False,
                 id="host-changed"),
    pytest.param(u3.LocationParseError("::"), False, 502, "upstream_error", False,
                 id="location-parse"),
    pytest.param(u3.MaxRetryError(None, "/", u3.NewConnectionError(None, "refused")), False,
                 502, "upstream_unreachable", True, id="max-retry"),
    pytest.param(u3.ProtocolError("broken", ConnectionResetError()), True, 502,
                 "upstream_error", False, id="reset-mid-body"),
    pytest.param(u3.ReadTimeoutError(None, "/", "slow"), True, 504, "upstream_timeout", False,
                 id="silent-mid-body"),
    pytest.param(u3.SSLError("bad record mac"), True, 502, "upstream_error", False,
                 id="tls-mid-body"),
    pytest.param(ValueError("Expecting value"), True, 502, "upstream_error", False,
                 id="bad-json"),
])
def test_error_table(exc, answered, status, code, retry):
    error = OllamaClient("http://127.0.0.1:9")._error_for(exc, answered)
    assert (error.status, error.code, error.retryable) == (status, code, retry)


def test_a_bug_of_ours_is_not_disguised():
    assert OllamaClient("http://127.0.0.1:9")._error_for(ValueError("ours"), False) is None


def test_client_is_plain_urllib3():
    client = OllamaClient("http://127.0.0.1:9", pool_maxsize=7, read_timeout=9)
    assert type(client.manager) is urllib3.PoolManager and client.proxy is None
    pool = client.manager.connection_from_url(client.base_url)
    retries = urllib3.util.Retry.from_int(pool.retries)
    assert (pool.pool.maxsize, pool.block, retries.total) == (7, False, False)
    assert pool.timeout.read_timeout == 9 and not hasattr(client, "session")


def test_proxy_from_the_environment_only_with_trust_env(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://user:p%40ss@127.0.0.1:3128")
    assert OllamaClient("http://10.0.0.5:11434").proxy is None
    client = OllamaClient("http://10.0.0.5:11434", trust_env=True)
    assert type(client.manager) is urllib3.ProxyManager
    assert client.proxy == "http://127.0.0.1:3128"  # no credentials in messages
    assert client.manager.proxy_headers["proxy-authorization"] == urllib3.make_headers(
        proxy_basic_auth="user:p@ss")["proxy-authorization"]
    monkeypatch.setenv("no_proxy", "10.0.0.0/8")
    assert OllamaClient("http://10.0.0.5:11434", trust_env=True).proxy is None
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match="socks5"):
        OllamaClient("http://10.0.0.5:11434", trust_env=True)


def test_ca_bundle_setting(tmp_path, tls):
    environ = {"OLLAMA_HOST": "https://127.0.0.1:8443", "OLLAMA_GATEWAY_CA_BUNDLE": str(tls.cert)}
    conf = load_settings(environ, {})
    assert (conf.ollama_url, conf.ca_bundle) == ("https://127.0.0.1:8443", str(tls.cert))
    assert load_settings({}, {}).ca_bundle is None
    with pytest.raises(ConfigError, match="OLLAMA_GATEWAY_CA_BUNDLE.*no such file"):
        load_settings({"OLLAMA_GATEWAY_CA_BUNDLE": str(tmp_path / "missing.pem")}, {})
