"""The upstream edge over real programs: a tinyproxy in front of Ollama, Ollama
over TLS with a certificate made for the test, and answers cut off mid-body.

The gateway reads proxy variables when the app is built (with TRUST_ENV), so
each test sets them only around ``create_app``: the test's own ``requests``
calls to the gateway never go through the proxy.
"""
import json
import subprocess

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import OllamaEmulator, Reply, chat_line, drop_reply, ndjson_reply
from ..proxy_server import Tinyproxy
from ..sse import read_events
from ..tls_certs import make_cert, openssl_binary, serve_tls
from .shapes import assert_error

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy")


def post(url, body, **kw):
    return requests.post(url + "/chat/completions", json=body, timeout=30, **kw)


def content_of(resp):
    """Return the assistant text of a streamed chat, checking it ends with [DONE]."""
    assert resp.status_code == 200, resp.text
    events = read_events(resp)
    assert events[-1] == "[DONE]"
    return "".join(choice["delta"].get("content") or ""
                   for event in events[:-1] for choice in json.loads(event)["choices"])


@pytest.fixture
def gateway(monkeypatch, serve):
    """``gateway(env, **settings)``: the base URL of an app built with ``env`` set."""
    def start(env=None, **settings):
        with monkeypatch.context() as patch:
            for name in PROXY_VARS:
                patch.delenv(name, raising=False)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            app = create_app(startup_check=False,
                             **dict({"read_timeout": 5, "store": "off"}, **settings))
        return serve(app) + "/v1"
    return start


# --- TLS -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    return make_cert(directory, "ollama")


@pytest.fixture(scope="module")
def tls_emulator(certs):
    """A second emulator, speaking TLS with ``certs``."""
    with OllamaEmulator() as emu:
        emu.https_url = serve_tls(emu, certs)
        yield emu


@pytest.fixture
def tls_ollama(tls_emulator):
    tls_emulator.reset()
    yield tls_emulator


def one_write_reply(lines, then_end=True):
    """Return a 200 NDJSON stream whose headers and lines leave in one write (one TLS record)."""
    body = b"".join(b"%X\r\n%s\r\n" % (len(line), line) for line in lines)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")

    def send(h, rec):
        h.write(head + body + (b"0\r\n\r\n" if then_end else b""), rec)
    return Reply("one write, %d lines" % len(lines), send)


def words(count):
    return ["w%d " % i for i in range(count)]


def stream_lines(pieces):
    return [chat_line("llama3.2", piece) for piece in pieces] + [
        chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=3,
                  eval_count=len(pieces))]


def test_https_ollama_plain_stream_and_models(gateway, tls_ollama, certs):
    url = gateway(ollama_url=tls_ollama.https_url, ca_bundle=str(certs.cert))
    resp = post(url, CHAT)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "Echo: Hi"
    models = requests.get(url + "/models", timeout=30)
    assert models.status_code == 200
    assert "llama3.2:latest" in {m["id"] for m in models.json()["data"]}
    pieces = words(400)
    tls_ollama.script("/api/chat", ndjson_reply(stream_lines(pieces)))
    assert content_of(post(url, dict(CHAT, stream=True), stream=True)) == "".join(pieces)


@pytest.mark.parametrize("count", [3, 80], ids=["few", "past-8KiB"])
def test_https_stream_lines_in_the_headers_record(gateway, tls_ollama, certs, count):
    """Headers and lines in one TLS record: part of it stays decrypted in the TLS
    layer, where poll() does not look. The connection then stays open, so
    only reading that part ends the stream before the read timeout."""
    pieces = words(count)
    lines = [json.dumps(line, separators=(",", ":")).encode() + b"\n"
             for line in stream_lines(pieces)]
    size = sum(map(len, lines))
    assert size < 15000 and (count < 10 or size > 8192)  # one record; past http.client's 8 KiB
    tls_ollama.script("/api/chat", one_write_reply(lines))
    url = gateway(ollama_url=tls_ollama.https_url, ca_bundle=str(certs.cert), read_timeout=3)
    assert content_of(post(url, dict(CHAT, stream=True), stream=True)) == "".join(pieces)


def test_ca_bundle_may_be_a_hashed_directory(gateway, tls_ollama, certs, tmp_path):
    (tmp_path / "ollama.pem").write_bytes(certs.cert.read_bytes())
    subprocess.run([openssl_binary(), "rehash", str(tmp_path)], check=True, timeout=30)
    url = gateway(ollama_url=tls_ollama.https_url, ca_bundle=str(tmp_path))
    assert post(url, CHAT).status_code == 200


def test_https_settings_from_the_environment(gateway, tls_ollama, certs):
    url = gateway({"OLLAMA_HOST": tls_ollama.https_url,
                   "OLLAMA_GATEWAY_CA_BUNDLE": str(certs.cert)})
    assert post(url, CHAT).status_code == 200


@pytest.mark.parametrize("host, bundle, reason", [
    pytest.param("127.0.0.1", False, "self", id="untrusted"),
    pytest.param("localhost", True, "match", id="wrong-host-name"),  # "mismatch", 1.26: "match"
])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tls_verification_failures_are_clean_502s(gateway, tls_ollama, certs, host, bundle,
                                                  reason, stream):
    base = tls_ollama.https_url.replace("127.0.0.1", host)
    url = gateway(ollama_url=base, ca_bundle=str(certs.cert) if bundle else None)
    resp = post(url, dict(CHAT, stream=stream))
    err = assert_error(resp, 502, code="upstream_tls_error")
    assert "TLS verification" in err["message"] and reason in err["message"].lower()
    assert "OLLAMA_GATEWAY_CA_BUNDLE" in err["message"]
    assert resp.headers["x-should-retry"] == "false"
    assert tls_ollama.requests == []


# --- cut-off answers -------------------------------------------------------------------

def cut_reply(declared, body, chunked=False):
    """Return a 200 whose body stops short of what its headers promise, then a close."""
    def send(h, rec):
        if chunked:
            headers = [("Content-Type", "application/json; charset=utf-8"),
                       ("Transfer-Encoding", "chunked")]
            payload = b"%X\r\n%s" % (declared, body)
        else:
            headers = [("Content-Type", "application/json; charset=utf-8"),
                       ("Content-Length", str(declared))]
            payload = body
        if h.start(200, headers, rec):
            h.write(payload, rec)
        h.abort()
    return Reply("cut at %d of %d" % (len(body), declared), send)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path, api", [("/chat/completions", "/api/chat"),
                                       ("/models", "/api/tags")])
def test_cut_off_body_is_not_retryable(gateway_url, ollama, chunked, path, api):
    """Ollama answered (and generated): a retry would pay for it again."""
    ollama.script(api, cut_reply(500, b'{"model":"llama3.2","message":{"role":', chunked))
    if api == "/api/chat":
        resp = post(gateway_url, CHAT)
    else:
        resp = requests.get(gateway_url + path, timeout=30)
    err = assert_error(resp, 502, code="upstream_error")
    assert resp.headers["x-should-retry"] == "false"
    assert "broke mid-response" in err["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_drop_before_the_status_line_stays_retryable(gateway_url, ollama, stream):
    ollama.script("/api/chat", drop_reply())
    resp = post(gateway_url, dict(CHAT, stream=stream))
    assert_error(resp, 502, code="upstream_unreachable")
    assert resp.headers["x-should-retry"] == "true"


# --- proxies -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory, tls_emulator):
    with Tinyproxy(tmp_path_factory.mktemp("tinyproxy"),
                   connect_ports=[tls_emulator.port]) as proxy:
        yield proxy


def test_http_ollama_through_the_proxy(gateway, ollama, tinyproxy):
    url = gateway({"HTTP_PROXY": tinyproxy.url}, ollama_url=ollama.url, trust_env=True)
    resp = post(url, CHAT)
    assert resp.status_code == 200, resp.text
    assert "tinyproxy" in ollama.last("/api/chat").headers.get("Via", "")
    pieces = words(50)
    ollama.script("/api/chat", ndjson_reply(stream_lines(pieces)))
    assert content_of(post(url, dict(CHAT, stream=True), stream=True)) == "".join(pieces)
    assert "tinyproxy" in ollama.last("/api/chat").headers.get("Via", "")
    assert len(ollama.requests) == 2


def test_https_ollama_through_a_connect_tunnel(gateway, tls_ollama, tinyproxy, certs):
    url = gateway({"https_proxy": tinyproxy.url}, ollama_url=tls_ollama.https_url,
                  ca_bundle=str(certs.cert), trust_env=True)
    assert post(url, CHAT).status_code == 200
    pieces = words(50)
    tls_ollama.script("/api/chat", ndjson_reply(stream_lines(pieces)))
    assert content_of(post(url, dict(CHAT, stream=True), stream=True)) == "".join(pieces)
    assert "Via" not in tls_ollama.last("/api/chat").headers  # a tunnel: the proxy saw only TLS
    assert "CONNECT 127.0.0.1:%d" % tls_ollama.port in tinyproxy.log()


@pytest.mark.parametrize("env, trust_env", [
    pytest.param({"HTTP_PROXY": "http://127.0.0.1:9"}, False, id="trust-env-off"),
    pytest.param({"HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}, True,
                 id="no-proxy"),
])
def test_proxy_variables_that_do_not_apply(gateway, ollama, env, trust_env):
    url = gateway(env, ollama_url=ollama.url, trust_env=trust_env)
    assert post(url, CHAT).status_code == 200
    assert "Via" not in ollama.last("/api/chat").headers


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_refusing_proxy_is_a_clean_502(gateway, ollama, dead_url, stream):
    url = gateway({"HTTP_PROXY": dead_url}, ollama_url=ollama.url, trust_env=True)
    resp = post(url, dict(CHAT, stream=stream))
    err = assert_error(resp, 502, code="upstream_unreachable")
    assert resp.headers["x-should-retry"] == "true"
    assert "through the proxy %s" % dead_url in err["message"]
    assert ollama.requests == []
