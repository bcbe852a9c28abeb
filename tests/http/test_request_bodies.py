"""Compressed request bodies (Content-Encoding) over HTTP, on every POST endpoint: the
gateway served in-process on loopback, the Ollama emulator recording what reaches it."""
import gzip
import json
import os
import subprocess
import sys
import zlib

import pytest
import requests
import zstandard

from ollama_gateway import create_app

from ..schema_check import assert_matches
from ..servers import ROOT, InProcessServer
from ..unit.test_body_decoding import BOMB_SIZE, deflate_zeros, zstd_zeros
from .shapes import assert_error

ENDPOINTS = {
    "chat": ("/chat/completions", "/api/chat", "chat_completions.response",
             {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}],
              "temperature": 0.5, "stop": ["\n\n"]}),
    "embeddings": ("/embeddings", "/api/embed", "embeddings.response",
                   {"model": "nomic-embed-text", "input": ["The food was delicious", "ok"]}),
    "completions": ("/completions", "/api/generate", "completions.response",
                    {"model": "llama3.2", "prompt": "Say this is a test", "max_tokens": 7}),
}

ENCODERS = {
    "gzip": lambda raw: gzip.compress(raw),
    "x-gzip": lambda raw: gzip.compress(raw),
    "deflate": lambda raw: zlib.compress(raw),
    "zstd": lambda raw: zstandard.ZstdCompressor().compress(raw),
    "gzip, zstd": lambda raw: zstandard.ZstdCompressor().compress(gzip.compress(raw)),
    "identity": lambda raw: raw,
}


def post(url, path, raw, coding=None):
    headers = {"Content-Type": "application/json"}
    if coding is not None:
        headers["Content-Encoding"] = coding
    return requests.post(url + path, data=raw, headers=headers, timeout=30)


@pytest.mark.parametrize("coding", sorted(ENCODERS))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_compressed_bodies_reach_ollama_decoded(gateway_url, ollama, endpoint, coding):
    path, upstream, schema, body = ENDPOINTS[endpoint]
    raw = json.dumps(body).encode()
    plain = post(gateway_url, path, raw)
    assert plain.status_code == 200, plain.text
    expected = ollama.last(upstream).json

    resp = post(gateway_url, path, ENCODERS[coding](raw), coding)
    assert resp.status_code == 200, resp.text
    assert_matches(schema, resp.json())
    sent = ollama.last(upstream)
    assert sent.json == expected
    # The gateway sends Ollama JSON of its own making, never the client's coding.
    assert "Content-Encoding" not in sent.headers
    assert len(ollama.requests) == 2


@pytest.fixture(scope="module")
def capped_url(emulator, serve_module):
    """The gateway with a 2 MiB body cap: room for a 1 GiB bomb's ~1 MB of gzip."""
    return serve_module(create_app(ollama_url=emulator.url, max_body_bytes=2 * 1024 * 1024)) + "/v1"


@pytest.mark.parametrize("coding, bomb", [
    pytest.param("gzip", lambda: deflate_zeros(BOMB_SIZE, "gzip"), id="gzip"),
    pytest.param("deflate", lambda: deflate_zeros(BOMB_SIZE, "zlib"), id="deflate"),
    pytest.param("zstd", lambda: zstd_zeros(BOMB_SIZE), id="zstd"),
])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_bomb_is_413_and_nothing_goes_upstream(capped_url, ollama, endpoint, coding, bomb):
    err = assert_error(post(capped_url, ENDPOINTS[endpoint][0], bomb(), coding), 413,
                       code="request_too_large")
    assert "once decoded" in err["message"]
    assert ollama.requests == []


def test_compressed_body_over_the_cap_is_413_before_decoding(capped_url, ollama):
    noise = os.urandom(3 * 1024 * 1024)  # incompressible: gzip makes it no smaller
    resp = post(capped_url, "/chat/completions", gzip.compress(noise, 1), "gzip")
    err = assert_error(resp, 413, code="request_too_large")
    assert "once decoded" not in err["message"]
    assert ollama.requests == []


@pytest.mark.parametrize("coding", ["br", "compress", "gzip, br", "no-such-thing"])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_unknown_coding_is_415(gateway_url, ollama, endpoint, coding):
    path, _, _, body = ENDPOINTS[endpoint]
    resp = post(gateway_url, path, gzip.compress(json.dumps(body).encode()), coding)
    err = assert_error(resp, 415, code="unsupported_content_encoding")
    assert err["type"] == "invalid_request_error"
    assert "'br'" in err["message"] or repr(coding) in err["message"]
    assert resp.headers["Accept-Encoding"] == "zstd, gzip, x-gzip, deflate, identity"
    assert resp.headers["x-should-retry"] == "false"
    assert ollama.requests == []


@pytest.mark.parametrize("coding, raw", [
    pytest.param("gzip", b"this is not gzip", id="gzip-bad-header"),
    pytest.param("gzip", gzip.compress(b'{"model": "llama3.2"}')[:-5], id="gzip-truncated"),
    pytest.param("deflate", zlib.compress(b'{"model": "llama3.2"}') + b"!", id="deflate-trailing"),
    pytest.param("zstd", b'{"model": "llama3.2"}', id="zstd-plain-json"),
    pytest.param("zstd", zstandard.ZstdCompressor().compress(b'{"model": "x"}')[:-3],
                 id="zstd-truncated"),
])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_corrupt_body_is_400(gateway_url, ollama, endpoint, coding, raw):
    err = assert_error(post(gateway_url, ENDPOINTS[endpoint][0], raw, coding), 400,
                       code="invalid_body")
    assert err["type"] == "invalid_request_error"
    assert "Content-Encoding " + coding in err["message"]
    assert ollama.requests == []


def test_decoded_garbage_is_still_invalid_json(gateway_url, ollama):
    resp = post(gateway_url, "/chat/completions", gzip.compress(b"{not json"), "gzip")
    assert_error(resp, 400, code="invalid_json")
    assert ollama.requests == []


# Run in a child interpreter: zstandard is blocked before the gateway is imported,
# the way an install without the extra behaves; the child reports back as JSON.
_WITHOUT_ZSTANDARD = r"""
import json, logging, sys
sys.modules["zstandard"] = None
import gzip, requests
from ollama_gateway import create_app
from tests.servers import InProcessServer

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelname, record.getMessage()))
logging.getLogger("ollama_gateway").addHandler(Keep())

server = InProcessServer(create_app(ollama_url=sys.argv[1], startup_check=False))
body = json.dumps({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}).encode()
out = {"replies": []}
try:
    for coding, raw in (("zstd", b"\x28\xb5\x2f\xfd..."), ("zstd", b"whatever"),
                        ("gzip", gzip.compress(body)), ("br", b"x")):
        resp = requests.post(server.url + "/v1/chat/completions", data=raw, timeout=30,
                             headers={"Content-Type": "application/json",
                                      "Content-Encoding": coding})
        out["replies"].append({"status": resp.status_code, "body": resp.json(),
                               "accept": resp.headers.get("Accept-Encoding")})
finally:
    server.stop()
out["records"] = records
print(json.dumps(out))
"""


def test_zstd_without_zstandard_is_415_and_warned_once(ollama):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("OLLAMA_GATEWAY_") and key != "OLLAMA_HOST"}
    result = subprocess.run([sys.executable, "-c", _WITHOUT_ZSTANDARD, ollama.url],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    zstd_1, zstd_2, gzipped, brotli = out["replies"]
    for reply in (zstd_1, zstd_2):
        assert reply["status"] == 415
        assert_matches("error", reply["body"])
        error = reply["body"]["error"]
        assert error["code"] == "unsupported_content_encoding"
        assert "ollama-gateway[zstd]" in error["message"]
        assert reply["accept"] == "gzip, x-gzip, deflate, identity"
    # Everything else still works without the extra.
    assert gzipped["status"] == 200 and gzipped["body"]["object"] == "chat.completion"
    assert brotli["status"] == 415 and "zstd" not in brotli["body"]["error"]["message"]
    warnings = [r for r in out["records"] if r[1] == "WARNING"]
    assert len(warnings) == 1, out["records"]
    name, _, message = warnings[0]
    assert name == "ollama_gateway" and "ollama-gateway[zstd]" in message
    assert [r.path for r in ollama.requests] == ["/api/chat"]
