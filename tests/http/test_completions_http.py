"""/v1/completions over HTTP: validation, forwarding to /api/generate, SSE frames, errors."""
import json

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import error_reply, generate_line, ndjson_reply
from ..schema_check import assert_matches
from ..sse import read_events
from .shapes import assert_completion_chunk, assert_error

COMPLETE = {"model": "llama3.2", "prompt": "Say this is a test"}


def post(url, body, **kw):
    return requests.post(url + "/completions", json=body, timeout=10, **kw)


@pytest.mark.parametrize("body, param, code", [
    pytest.param({"prompt": "x"}, "model", "missing_required_parameter", id="no-model"),
    pytest.param({"model": "m"}, "prompt", "missing_required_parameter", id="no-prompt"),
    pytest.param(dict(COMPLETE, prompt=None), "prompt", "missing_required_parameter",
                 id="null-prompt"),
    pytest.param(dict(COMPLETE, prompt=["a", "b"]), "prompt", "unsupported_value",
                 id="two-prompts"),
    pytest.param(dict(COMPLETE, prompt=[1, 2]), "prompt", "unsupported_value", id="token-ids"),
    pytest.param(dict(COMPLETE, prompt=[]), "prompt", "invalid_value", id="empty-list"),
    pytest.param(dict(COMPLETE, best_of=2), "best_of", "unsupported_parameter", id="best_of"),
    pytest.param(dict(COMPLETE, logit_bias={"1": 5}), "logit_bias", "unsupported_parameter",
                 id="logit_bias"),
    pytest.param(dict(COMPLETE, n=2, stream=True), "n", "unsupported_value", id="n-streaming"),
    pytest.param(dict(COMPLETE, logprobs=6), "logprobs", "invalid_value", id="logprobs-above-5"),
    pytest.param(dict(COMPLETE, echo=True, logprobs=1), "echo", "unsupported_value",
                 id="echo-with-logprobs"),
    pytest.param(dict(COMPLETE, temperature=3), "temperature", "invalid_value",
                 id="temperature-range"),
    pytest.param(dict(COMPLETE, stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value",
                 id="five-stops"),
])
def test_invalid_requests_never_reach_ollama(gateway_url, ollama, body, param, code):
    err = assert_error(post(gateway_url, body), 400, param=param, code=code)
    assert err["type"] == "invalid_request_error"
    assert ollama.requests == []


def test_plain(gateway_url, ollama):
    resp = post(gateway_url, dict(COMPLETE, max_tokens=50, temperature=0.2, stop="\n", seed=3,
                                  user="u"))
    body = resp.json()
    assert_matches("completions.response", body)
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["choices"] == [{"text": "Echo: Say this is a test", "index": 0, "logprobs": None,
                                "finish_reason": "stop"}]
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 6
    assert resp.headers["X-Gateway-Ignored-Params"] == "user"
    assert ollama.last("/api/generate").json == {
        "model": "llama3.2", "prompt": "Say this is a test", "stream": False,
        "options": {"temperature": 0.2, "stop": ["\n"], "seed": 3, "num_predict": 50,
                    "num_ctx": 8192}}


def test_length_and_logprobs(gateway_url, ollama):
    body = post(gateway_url, dict(COMPLETE, max_tokens=2, logprobs=2)).json()
    assert_matches("completions.response", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert "".join(choice["logprobs"]["tokens"]) == choice["text"] == "Echo: Say "
    assert choice["logprobs"]["text_offset"] == [0, len("Echo: ")]
    assert all(len(top) == 2 for top in choice["logprobs"]["top_logprobs"])
    sent = ollama.last("/api/generate").json
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)


def test_suffix_and_echo(gateway_url, ollama):
    body = post(gateway_url, {"model": "qwen2.5-coder:1.5b", "prompt": "def add(a, b):",
                              "suffix": "    return c", "echo": True}).json()
    assert body["choices"][0]["text"] == "def add(a, b):Echo: def add(a, b):"
    assert ollama.last("/api/generate").json["suffix"] == "    return c"


def test_suffix_on_model_without_insert_is_400(gateway_url):
    err = assert_error(post(gateway_url, dict(COMPLETE, suffix="end")), 400)
    assert "does not support insert" in err["message"]


def test_n_choices_vary_seed(gateway_url, ollama):
    body = post(gateway_url, dict(COMPLETE, n=2, best_of=2, seed=10)).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [r.json["options"]["seed"] for r in ollama.requests] == [10, 11]


def test_settings_apply(serve, emulator, ollama):
    url = serve(create_app(ollama_url=emulator.url, num_ctx=0, keep_alive=-1,
                           num_ctx_by_model={"qwen3": 4096})) + "/v1"
    post(url, COMPLETE)
    assert ollama.last("/api/generate").json["options"] == {}
    assert ollama.last("/api/generate").json["keep_alive"] == -1
    post(url, dict(COMPLETE, model="qwen3"))
    assert ollama.last("/api/generate").json["options"] == {"num_ctx": 4096}


def chunks_of(resp):
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = read_events(resp)
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_stream(gateway_url, ollama):
    chunks = chunks_of(post(gateway_url, dict(COMPLETE, stream=True), stream=True))
    for chunk in chunks[:-1]:
        assert_completion_chunk(chunk)
    assert_completion_chunk(chunks[-1], final=True)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Echo: Say this is a test"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert not any("usage" in c for c in chunks)
    assert ollama.last("/api/generate").json["stream"] is True


def test_stream_include_usage(gateway_url):
    chunks = chunks_of(post(gateway_url, dict(COMPLETE, stream=True, max_tokens=3,
                                              stream_options={"include_usage": True}),
                            stream=True))
    for chunk in chunks[:-2]:
        assert_completion_chunk(chunk)
        assert chunk["usage"] is None
    assert_completion_chunk(chunks[-2], final=True)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-2]["usage"] is None
    usage_chunk = assert_completion_chunk(chunks[-1], final=True)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3


def test_stream_logprobs(gateway_url):
    chunks = chunks_of(post(gateway_url, dict(COMPLETE, stream=True, logprobs=1), stream=True))
    with_logprobs = [c["choices"][0] for c in chunks if c["choices"][0]["logprobs"]]
    offsets = [o for c in with_logprobs for o in c["logprobs"]["text_offset"]]
    text = "".join(c["choices"][0]["text"] for c in chunks)
    tokens = [t for c in with_logprobs for t in c["logprobs"]["tokens"]]
    assert [text[o:o + len(t)] for o, t in zip(offsets, tokens)] == tokens


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_model(gateway_url, stream):
    assert_error(post(gateway_url, dict(COMPLETE, model="nope", stream=stream)), 404,
                 param="model", code="model_not_found")


def test_mid_stream_error_is_error_event(gateway_url, ollama):
    ollama.script("/api/generate", ndjson_reply([generate_line("llama3.2", "Hel"),
                                                 {"error": "runner crashed"}]))
    events = read_events(post(gateway_url, dict(COMPLETE, stream=True), stream=True))
    assert json.loads(events[0])["choices"][0]["text"] == "Hel"
    error = json.loads(events[-1])
    assert_matches("error", error)
    assert "runner crashed" in error["error"]["message"] and "[DONE]" not in events


def test_busy_upstream_is_503(gateway_url, ollama):
    ollama.script("/api/generate", error_reply(503, "server busy"))
    assert_error(post(gateway_url, COMPLETE), 503, code="upstream_busy")
