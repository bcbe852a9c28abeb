"""Optional bearer keys, and the health endpoints that stay outside them."""
import pytest
import requests

from ollama_gateway import create_app
from ollama_gateway.access import check_bearer
from ollama_gateway.config import ConfigError
from ollama_gateway.errors import AuthenticationFailed

from ..ollama_emulator import error_reply
from ..servers import InProcessServer

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic a2V5", "Bearer wrong",
                                    "Bearer key-1x", "bearer key-"])
def test_check_bearer_refuses(header):
    with pytest.raises(AuthenticationFailed) as info:
        check_bearer(header, {"key-1", "key-2"})
    assert (info.value.status, info.value.code) == (401, "invalid_api_key")


@pytest.mark.parametrize("header", ["Bearer key-1", "bearer key-2", "Bearer  key-1 "])
def test_check_bearer_accepts(header):
    check_bearer(header, {"key-1", "key-2"})


@pytest.mark.parametrize("header", [None, "Bearer anything", "garbage"])
def test_no_keys_configured_accepts_anything(header):
    check_bearer(header, set())


@pytest.fixture
def keyed_url(emulator, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# one key per line\nfile-key\n\n")
    server = InProcessServer(create_app(ollama_url=emulator.url, api_keys="env-key",
                                        api_keys_file=str(key_file)))
    yield server.url + "/v1"
    server.stop()


def post(url, key=None):
    headers = {"Authorization": "Bearer " + key} if key else {}
    return requests.post(url + "/chat/completions", json=CHAT, headers=headers, timeout=10)


def test_keys_required_when_configured(keyed_url, ollama):
    for key in (None, "wrong"):
        resp = post(keyed_url, key)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_api_key"
        assert resp.headers["Content-Type"] == "application/json"
    assert ollama.requests == []
    for key in ("env-key", "file-key"):
        assert post(keyed_url, key).status_code == 200
    # the client's key never reaches Ollama
    assert all(r.headers.get("Authorization") is None for r in ollama.requests)


def test_unknown_routes_are_behind_the_key_too(keyed_url):
    assert requests.get(keyed_url + "/nope", timeout=10).status_code == 401


def test_health_is_outside_the_key(keyed_url, ollama):
    assert requests.get(keyed_url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(keyed_url + "/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ollama.last("/api/version")


def test_readyz_fails_when_ollama_does_not_answer(gateway_url, ollama, dead_url):
    ollama.script("/api/version", error_reply(500, "boom"))
    resp = requests.get(gateway_url + "/readyz", timeout=10)
    assert resp.status_code == 503
    assert "Not ready" in resp.json()["error"]["message"]
    server = InProcessServer(create_app(ollama_url=dead_url))
    try:
        resp = requests.get(server.url + "/v1/readyz", timeout=10)
        assert resp.status_code == 503 and dead_url in resp.json()["error"]["message"]
        assert requests.get(server.url + "/v1/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_unreadable_key_file_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="OLLAMA_GATEWAY_API_KEYS_FILE"):
        create_app(api_keys_file=str(tmp_path / "missing"))
