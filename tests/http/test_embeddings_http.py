"""/v1/embeddings over HTTP: validation, encodings, forwarding, broken upstream replies."""
import array
import base64

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import json_reply
from ..schema_check import assert_matches
from .shapes import assert_error

EMBED = {"model": "nomic-embed-text", "input": "The food was delicious"}


def post(url, body):
    return requests.post(url + "/embeddings", json=body, timeout=10)


@pytest.mark.parametrize("body, param, code", [
    pytest.param({"input": "x"}, "model", "missing_required_parameter", id="no-model"),
    pytest.param({"model": "m"}, "input", "missing_required_parameter", id="no-input"),
    pytest.param(dict(EMBED, input=[]), "input", "invalid_value", id="empty-list"),
    pytest.param(dict(EMBED, input=""), "input", "invalid_value", id="empty-string"),
    pytest.param(dict(EMBED, input=["a", ""]), "input[1]", "invalid_value",
                 id="empty-string-in-list"),
    pytest.param(dict(EMBED, input=[1, 2, 3]), "input", "unsupported_value", id="token-ids"),
    pytest.param(dict(EMBED, input=[[1, 2], [3]]), "input", "unsupported_value",
                 id="token-id-lists"),
    pytest.param(dict(EMBED, input=[{"text": "a"}]), "input", "invalid_value", id="objects"),
    pytest.param(dict(EMBED, encoding_format="int8"), "encoding_format", "invalid_value",
                 id="bad-encoding"),
    pytest.param(dict(EMBED, dimensions=0), "dimensions", "invalid_value", id="dimensions-zero"),
])
def test_invalid_requests_never_reach_ollama(gateway_url, ollama, body, param, code):
    err = assert_error(post(gateway_url, body), 400, param=param, code=code)
    assert err["type"] == "invalid_request_error"
    assert ollama.requests == []


def test_float_batch_in_order(gateway_url, ollama):
    resp = post(gateway_url, dict(EMBED, input=["a", "b", "c"], user="u-1"))
    body = resp.json()
    assert_matches("embeddings.response", body)
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(len(d["embedding"]) == 768 for d in body["data"])
    assert body["model"] == "nomic-embed-text"
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert resp.headers["X-Gateway-Ignored-Params"] == "user"
    sent = ollama.last("/api/embed").json
    assert sent == {"model": "nomic-embed-text", "input": ["a", "b", "c"]}  # one call, no extras
    # Distinct inputs, distinct vectors, in input order.
    single = post(gateway_url, dict(EMBED, input="b")).json()["data"][0]["embedding"]
    assert body["data"][1]["embedding"] == single != body["data"][0]["embedding"]


def test_base64_decodes_to_the_float_vectors(gateway_url):
    floats = post(gateway_url, dict(EMBED, input=["a", "b"])).json()
    packed = post(gateway_url, dict(EMBED, input=["a", "b"], encoding_format="base64")).json()
    for f, b in zip(floats["data"], packed["data"]):
        assert isinstance(b["embedding"], str)
        decoded = array.array("f", base64.b64decode(b["embedding"])).tolist()
        assert len(decoded) == len(f["embedding"]) == 768
        assert decoded == pytest.approx(f["embedding"], rel=1e-6, abs=1e-7)
    decoded_doc = dict(packed, data=[dict(d, embedding=array.array(
        "f", base64.b64decode(d["embedding"])).tolist()) for d in packed["data"]])
    assert_matches("embeddings.response", decoded_doc)


def test_dimensions_forwarded_only_when_given(gateway_url, ollama):
    body = post(gateway_url, dict(EMBED, dimensions=256)).json()
    assert ollama.last("/api/embed").json["dimensions"] == 256
    assert len(body["data"][0]["embedding"]) == 256
    post(gateway_url, dict(EMBED, dimensions=None))
    assert "dimensions" not in ollama.last("/api/embed").json


def test_keep_alive_setting_applies(serve, emulator, ollama):
    url = serve(create_app(ollama_url=emulator.url, keep_alive="30m")) + "/v1"
    assert post(url, EMBED).status_code == 200
    assert ollama.last("/api/embed").json["keep_alive"] == "30m"
    # num_ctx is for generation: an embedding model keeps its own context size.
    assert "options" not in ollama.last("/api/embed").json


@pytest.mark.parametrize("reply", [
    pytest.param({"model": "m", "embeddings": [[0.1, 0.2]]}, id="fewer-vectors"),
    pytest.param({"model": "m", "embeddings": [[0.1], [0.2], [0.3]]}, id="more-vectors"),
    pytest.param({"model": "m", "embeddings": [[0.1, 0.2], []]}, id="empty-vector"),
    pytest.param({"model": "m", "embeddings": []}, id="no-vectors"),
])
def test_vector_mismatch_is_502(gateway_url, ollama, reply):
    ollama.script("/api/embed", json_reply(reply))
    err = assert_error(post(gateway_url, dict(EMBED, input=["a", "b"])), 502,
                       code="upstream_error")
    assert "embedding" in err["message"]


@pytest.mark.parametrize("model, status, code", [
    pytest.param("no-such-model", 404, "model_not_found", id="unknown-model"),
    pytest.param("llama3.2", 502, "upstream_error", id="chat-model-501"),
])
def test_upstream_refusals(gateway_url, model, status, code):
    assert_error(post(gateway_url, dict(EMBED, model=model)), status,
                 param="model" if status == 404 else None, code=code)
