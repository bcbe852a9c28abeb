"""/v1/models, aliases, the allow-list and several Ollama hosts over HTTP: the
gateway in-process on loopback, one or two Ollama emulators behind it."""
import logging

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import json_reply, raw_reply
from ..schema_check import assert_matches
from .shapes import assert_error

CHAT = {"messages": [{"role": "user", "content": "Hi"}]}


def get(url, path):
    return requests.get(url + path, timeout=10)


def post(url, path, body):
    return requests.post(url + path, json=body, timeout=10)


def listed(resp):
    assert resp.status_code == 200, resp.text
    assert_matches("models.list", resp.json())
    return [m["id"] for m in resp.json()["data"]]


def test_list_from_tags(gateway_url, ollama):
    data = get(gateway_url, "/models").json()["data"]
    assert [m["id"] for m in data] == [m["model"] for m in ollama.models]
    hf = data[-1]
    assert hf == {"id": "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "object": "model",
                  "created": 1785569412, "owned_by": "bartowski"}
    assert ollama.last().path == "/api/tags"


def test_empty_list_is_an_empty_array(gateway_url, ollama):
    ollama.script("/api/tags", json_reply({"models": []}))
    assert get(gateway_url, "/models").json() == {"object": "list", "data": []}


@pytest.mark.parametrize("model_id", [
    pytest.param("llama3.2:latest", id="colon"),
    pytest.param("llama3.2", id="no-tag-echoed-as-sent"),
    pytest.param("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", id="slashes"),
])
def test_retrieve(gateway_url, ollama, model_id):
    resp = get(gateway_url, "/models/" + model_id)
    assert resp.status_code == 200, resp.text
    assert_matches("models.model", resp.json())
    assert resp.json()["id"] == model_id
    assert ollama.last("/api/show").json == {"model": model_id}


def test_retrieve_percent_encoded_slashes(gateway_url):
    resp = get(gateway_url, "/models/hf.co%2Fbartowski%2FLlama-3.2-1B-Instruct-GGUF:Q4_K_M")
    assert resp.json()["owned_by"] == "bartowski"


def test_retrieve_unknown_is_model_not_found(gateway_url, ollama):
    err = assert_error(get(gateway_url, "/models/no/such-model"), 404, param="model",
                       code="model_not_found")
    assert "no/such-model" in err["message"]


def test_all_hosts_down_is_502(serve, dead_url):
    url = serve(create_app(ollama_url=dead_url)) + "/v1"
    err = assert_error(get(url, "/models"), 502, code="upstream_unreachable")
    assert dead_url in err["message"]


def test_garbage_model_list_is_502(gateway_url, ollama):
    ollama.script("/api/tags", raw_reply(200, b'{"models": "many"}', "application/json"))
    assert_error(get(gateway_url, "/models"), 502, code="upstream_error")


# -- aliases and the allow-list ------------------------------------------------

@pytest.fixture(scope="module")
def aliased_url(serve_module, emulator):
    app = create_app(ollama_url=emulator.url,
                     model_aliases={"gpt-4o": "llama3.2:latest",
                                    "text-embedding-3-small": "nomic-embed-text",
                                    "gpt-3.5-turbo-instruct": "qwen2.5-coder:1.5b"},
                     allowed_models=["llava", "nomic-embed-text:latest"])
    return serve_module(app) + "/v1"


def test_list_with_aliases_and_allow_list(aliased_url, ollama):
    assert listed(get(aliased_url, "/models")) == [
        "llava:latest", "nomic-embed-text:latest",
        "gpt-4o", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]


def test_alias_retrieved_under_its_own_name(aliased_url, ollama):
    resp = get(aliased_url, "/models/gpt-4o")
    assert resp.json() == {"id": "gpt-4o", "object": "model", "created": 1785569412,
                           "owned_by": "library"}
    assert ollama.last("/api/show").json == {"model": "llama3.2:latest"}


@pytest.mark.parametrize("path, body, native_path", [
    pytest.param("/chat/completions", dict(CHAT, model="gpt-4o"), "/api/chat", id="chat"),
    pytest.param("/chat/completions", dict(CHAT, model="gpt-4o", stream=True), "/api/chat",
                 id="chat-stream"),
    pytest.param("/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "x"},
                 "/api/generate", id="completions"),
    pytest.param("/embeddings", {"model": "text-embedding-3-small", "input": "x"}, "/api/embed",
                 id="embeddings"),
])
def test_alias_applied_and_echoed(aliased_url, ollama, path, body, native_path):
    resp = post(aliased_url, path, body)
    assert resp.status_code == 200, resp.text
    if body.get("stream"):
        assert '"model":"gpt-4o"' in resp.text and "llama3.2" not in resp.text
    else:
        assert resp.json()["model"] == body["model"]
    assert ollama.last(native_path).json["model"] == ollama_name(body["model"])


def ollama_name(alias):
    return {"gpt-4o": "llama3.2:latest", "text-embedding-3-small": "nomic-embed-text",
            "gpt-3.5-turbo-instruct": "qwen2.5-coder:1.5b"}[alias]


@pytest.mark.parametrize("method, path, body", [
    pytest.param("POST", "/chat/completions", dict(CHAT, model="llama3.2"), id="chat"),
    pytest.param("POST", "/chat/completions", dict(CHAT, model="llama3.2", stream=True),
                 id="chat-stream"),
    pytest.param("POST", "/completions", {"model": "qwen3", "prompt": "x"}, id="completions"),
    pytest.param("POST", "/embeddings", {"model": "bge-m3", "input": "x"}, id="embeddings"),
    pytest.param("GET", "/models/llama3.2:latest", None, id="retrieve"),
    pytest.param("GET", "/models/hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", None,
                 id="retrieve-slashes"),
])
def test_outside_allow_list_is_404_without_upstream_call(aliased_url, ollama, method, path,
                                                         body):
    resp = requests.request(method, aliased_url + path, json=body, timeout=10)
    err = assert_error(resp, 404, param="model", code="model_not_found")
    assert "does not exist or you do not have access to it" in err["message"]
    assert ollama.requests == []


def test_allowed_model_passes(aliased_url, ollama):
    resp = post(aliased_url, "/embeddings", {"model": "nomic-embed-text", "input": "x"})
    assert resp.status_code == 200 and ollama.last("/api/embed").json["model"] == "nomic-embed-text"


# -- several hosts -------------------------------------------------------------

@pytest.fixture(scope="module")
def two_host_url(serve_module, emulator, emulator2):
    app = create_app(ollama_url=emulator.url, model_aliases={"embedder": "bge-m3"},
                     upstreams={"qwen3": emulator2.url, "bge-m3:latest": emulator2.url})
    return serve_module(app) + "/v1"


@pytest.mark.parametrize("path, body, native_path, host", [
    pytest.param("/chat/completions", dict(CHAT, model="qwen3"), "/api/chat", 2, id="routed-chat"),
    pytest.param("/chat/completions", dict(CHAT, model="qwen3", stream=True), "/api/chat", 2,
                 id="routed-chat-stream"),
    pytest.param("/completions", {"model": "qwen3:latest", "prompt": "x"}, "/api/generate", 2,
                 id="routed-completions"),
    pytest.param("/embeddings", {"model": "embedder", "input": "x"}, "/api/embed", 2,
                 id="alias-follows-target-host"),
    pytest.param("/chat/completions", dict(CHAT, model="llama3.2"), "/api/chat", 1,
                 id="default-host"),
    pytest.param("/embeddings", {"model": "nomic-embed-text", "input": "x"}, "/api/embed", 1,
                 id="default-host-embeddings"),
])
def test_requests_routed_by_model(two_host_url, ollama, ollama2, path, body, native_path, host):
    resp = post(two_host_url, path, body)
    assert resp.status_code == 200, resp.text
    target, other = (ollama2, ollama) if host == 2 else (ollama, ollama2)
    assert [r.path for r in target.requests] == [native_path]
    assert other.requests == []


def test_embedding_dimension_of_the_routed_host(two_host_url, ollama2):
    data = post(two_host_url, "/embeddings", {"model": "embedder", "input": "x"}).json()["data"]
    assert len(data[0]["embedding"]) == 1024  # bge-m3 on host 2, not a 768-d model


def test_list_merges_hosts(two_host_url, ollama, ollama2):
    ids = listed(get(two_host_url, "/models"))
    # qwen3 is on both hosts but requests for it go to host 2: listed once, from there.
    assert ids == ["llama3.2:latest", "llava:latest", "qwen2.5-coder:1.5b",
                   "nomic-embed-text:latest", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
                   "qwen3:latest", "bge-m3:latest", "embedder"]
    assert [r.path for r in ollama.requests] == [r.path for r in ollama2.requests] == ["/api/tags"]


def test_one_host_down_gives_partial_list_and_warning(serve, emulator, ollama, dead_url, caplog):
    app = create_app(ollama_url=emulator.url, upstreams={"bge-m3": dead_url},
                     model_aliases={"embedder": "bge-m3", "chat": "llama3.2"})
    url = serve(app) + "/v1"
    with caplog.at_level(logging.WARNING, logger="ollama_gateway"):
        ids = listed(get(url, "/models"))
    assert ids == [m["model"] for m in ollama.models] + ["chat"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(dead_url in w for w in warnings), warnings
    # The host that is down still fails its own requests plainly.
    assert_error(post(url, "/embeddings", {"model": "embedder", "input": "x"}), 502,
                 code="upstream_unreachable")
