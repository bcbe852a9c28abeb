"""Failures the generated tests found, kept as plain cases (raw bodies, expected status class),
with a few contract edges beside them. Each body goes through ``contract.send``: never a 5xx,
an OpenAI-shaped error of at most 1,000 characters, strict JSON to Ollama, and an invalid body
(``"4xx"`` here) never reaches Ollama."""
import pytest

from .contract import send

LONG_MODEL = '{"model": "%s", "%s": %s}'

#: (endpoint, raw body, expected status class); "any" is 2xx or 4xx; "4xx-upstream" a
#: 4xx from Ollama itself (the request is valid, so it may be sent).
CASES = [
    # Found by test_mutated_requests[responses] (and the same on every endpoint): an unknown
    # 4,096-char model is a 404 whose message is 1,001 chars (1,000 + an ellipsis). The
    # request is schema-valid, so Ollama is asked (and answers the 404).
    pytest.param("responses", LONG_MODEL % ("x" * 4096, "input", '"Hi"'), "4xx-upstream", id="long-model-responses"),
    pytest.param("chat_completions", LONG_MODEL % ("x" * 4096, "messages", '[{"role": "user", "content": "Hi"}]'),
                 "4xx-upstream", id="long-model-chat"),
    pytest.param("completions", LONG_MODEL % ("x" * 4096, "prompt", '"Hi"'), "4xx-upstream", id="long-model-completions"),
    pytest.param("embeddings", LONG_MODEL % ("x" * 4096, "input", '"Hi"'), "4xx-upstream", id="long-model-embeddings"),
    # Contract edges (hand-written JSON text).
    pytest.param("chat_completions", '{"model": "llama3.2", "messages": [{"role": "user", "content": "\\ud800"}]}',
                 "any", id="lone-surrogate-content"),
    pytest.param("chat_completions", '{"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], '
                 '"temperature": NaN}', "4xx", id="nan-temperature"),
    pytest.param("completions", '{"model": "llama3.2", "prompt": "Hi", "max_tokens": 1e309}', "4xx", id="1e309"),
    pytest.param("completions", '{"model": "llama3.2", "prompt": "Hi", "seed": %s}' % ("9" * 300), "4xx",
                 id="300-digit-seed"),
    pytest.param("completions", '{"model": "llama3.2", "prompt": "Hi", "max_tokens": 1E2}', "any",
                 id="integral-float-max-tokens"),
    pytest.param("chat_completions", '{"model": "llama3.2", "messages": [{"role": {}, "content": "Hi"}]}', "4xx",
                 id="object-role"),
    pytest.param("responses", '{"model": "llama3.2", "input": [{"role": ["user"], "content": "Hi"}]}', "4xx",
                 id="array-role"),
    pytest.param("embeddings", "[" * 10000 + "]" * 10000, "4xx", id="nested-body-10000"),
    pytest.param("responses", '{"model": "llama3.2", "input": %s}' % ("[" * 10000 + "]" * 10000), "4xx",
                 id="nested-input-10000"),
]


@pytest.mark.parametrize("endpoint, body, expected", CASES)
def test_regression(gateway_url, ollama, endpoint, body, expected):
    resp, upstream = send(gateway_url, ollama, endpoint, body.encode("utf-8"),
                          valid=False if expected == "4xx" else None)
    if expected.startswith("4xx"):
        assert 400 <= resp.status_code < 500, resp.text[:500]
    elif expected == "2xx":
        assert 200 <= resp.status_code < 300, resp.text[:500]
