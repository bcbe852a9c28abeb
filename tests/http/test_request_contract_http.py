"""Each class of invalid body over HTTP, on every POST endpoint: a 400 and no upstream call."""
import json

import pytest
import requests

from .shapes import assert_error

BASES = {
    "/chat/completions": {"model": "qwen3", "messages": [{"role": "user", "content": "Hi"}]},
    "/completions": {"model": "qwen3", "prompt": "Hi"},
    "/embeddings": {"model": "nomic-embed-text", "input": "Hi"},
    "/responses": {"model": "qwen3", "input": "Hi", "store": False},
}
MARK = '"@@"'
CLASSES = [
    pytest.param("[" * 10000 + "]" * 10000, None, id="nested-10000"),
    pytest.param('{"a":' * 1000 + "1" + "}" * 1000, None, id="nested-objects-1000"),
    pytest.param('"\\ud800"', "x", id="lone-surrogate"),
    pytest.param("NaN", "x", id="nan"),
    pytest.param("1e309", "x", id="overflow"),
    pytest.param("9" * 300, "x", id="300-digits"),
]


def post(url, path, raw):
    return requests.post(url + path, data=raw, headers={"Content-Type": "application/json"},
                         timeout=30)


@pytest.mark.parametrize("path", list(BASES))
@pytest.mark.parametrize("literal, param", CLASSES)
def test_body_classes(gateway_url, ollama, path, literal, param):
    raw = json.dumps(dict(BASES[path], x="@@")).replace(MARK, literal)
    err = assert_error(post(gateway_url, path, raw), 400, param=param or err_param(literal),
                       code="invalid_value")
    assert err["type"] == "invalid_request_error"
    assert ollama.requests == []


def err_param(literal):
    return "x" + ("[0]" * 63 if literal.startswith("[") else ".a" * 63)


FIELD_CASES = [
    ("/chat/completions", {"messages": [{"role": {"x": 1}, "content": "x"}]}, "messages[0].role"),
    ("/chat/completions", {"n": 1E2}, "n"),
    ("/chat/completions", {"max_tokens": 0}, "max_tokens"),
    ("/chat/completions", {"seed": 2 ** 63}, "seed"),
    ("/chat/completions", {"model": ""}, "model"),
    ("/chat/completions", {"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": []}}}]},
     "tools[0].function.parameters"),
    ("/chat/completions", {"tools": [{"type": "function", "function": {"name": ""}}]},
     "tools[0].function.name"),
    ("/chat/completions", {"model": "llava", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}]}]},
     "messages[0].content[0].image_url.url"),
    ("/completions", {"max_tokens": -1}, "max_tokens"),
    ("/completions", {"n": 0.1e1}, "n"),
    ("/completions", {"logprobs": 6}, "logprobs"),
    ("/embeddings", {"dimensions": 10 ** 9}, "dimensions"),
    ("/embeddings", {"model": ""}, "model"),
    ("/responses", {"max_output_tokens": 0}, "max_output_tokens"),
    ("/responses", {"tools": [{"type": "function", "name": "f", "parameters": {"type": 5}}]},
     "tools[0].parameters"),
    ("/responses", {"tools": [{"type": "namespace", "name": "ns", "tools": [
        {"type": "function", "name": "a b"}]}]}, "tools[0].tools[0].name"),
    ("/responses", {"model": "llava", "input": [{"type": "message", "role": "user", "content": [
        {"type": "input_image", "image_url": "data:;base64,"}]}]}, "input[0].content[0].image_url"),
]


@pytest.mark.parametrize("path, fields, param", FIELD_CASES,
                         ids=["%s-%s" % (c[0].strip("/"), c[2]) for c in FIELD_CASES])
def test_field_classes(gateway_url, ollama, path, fields, param):
    resp = post(gateway_url, path, json.dumps(dict(BASES[path], **fields)))
    assert_error(resp, 400, param=param)
    assert ollama.requests == []


@pytest.mark.parametrize("model", [" qwen3", "qwen3 ", "%20qwen3%09"])
def test_model_ids_with_spaces_are_not_found(gateway_url, ollama, model):
    resp = requests.get(gateway_url + "/models/" + model, timeout=30)
    assert_error(resp, 404, param="model", code="model_not_found")
    assert ollama.requests == []


def test_long_model_name_is_clipped_in_errors(gateway_url, ollama):
    resp = requests.get(gateway_url + "/models/" + " " + "m" * 5000, timeout=30)
    err = assert_error(resp, 404, param="model")
    assert err["message"].count("m") < 250
