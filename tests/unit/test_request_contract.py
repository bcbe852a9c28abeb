"""The request contract, class by class: what no body may hold, limits, names, echoes."""
import json

import pytest

from ollama_gateway import schemas, translate
from ollama_gateway.body import MAX_DEPTH, MAX_ITEMS, parse_json
from ollama_gateway.errors import InvalidRequest
from ollama_gateway.upstream import _encode

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
DEEP_ARRAYS = lambda n: "[" * n + "]" * n  # noqa: E731
DEEP_OBJECTS = lambda n: '{"a":' * n + "1" + "}" * n  # noqa: E731


def refused(call, *args):
    with pytest.raises(InvalidRequest) as info:
        call(*args)
    err = info.value
    assert err.status == 400
    assert len(err.message) < 400
    return err


@pytest.mark.parametrize("text, param, code", [
    pytest.param('{"a": %s}' % DEEP_ARRAYS(1000), "a" + "[0]" * 63, "invalid_value", id="arrays-1000"),
    pytest.param('{"a": %s}' % DEEP_ARRAYS(10000), "a" + "[0]" * 63, "invalid_value", id="arrays-10000"),
    pytest.param('{"a": %s}' % DEEP_OBJECTS(1000), "a" + ".a" * 63, "invalid_value", id="objects-1000"),
    pytest.param('{"a": %s}' % DEEP_OBJECTS(10000), "a" + ".a" * 63, "invalid_value", id="objects-10000"),
    pytest.param('{"m": [%s]}' % DEEP_ARRAYS(MAX_DEPTH), "m" + "[0]" * 63, "invalid_value", id="just-past"),
    pytest.param('{"a": "\\ud800"}', "a", "invalid_value", id="lone-high"),
    pytest.param('{"a": ["x", "\\udc00\\ud800"]}', "a[1]", "invalid_value", id="reversed-pair"),
    pytest.param('{"k\\ud800": 1}', "k\\ud800", "invalid_value", id="surrogate-key"),
    pytest.param(b'{"a": "\xed\xa0\x80"}', "a", "invalid_value", id="cesu8-bytes"),
    pytest.param('{"t": NaN}', "t", "invalid_value", id="nan"),
    pytest.param('{"t": [Infinity]}', "t[0]", "invalid_value", id="infinity"),
    pytest.param('{"t": -Infinity}', "t", "invalid_value", id="minus-infinity"),
    pytest.param('{"t": 1e309}', "t", "invalid_value", id="overflow"),
    pytest.param('{"seed": %s}' % ("9" * 300), "seed", "invalid_value", id="300-digits"),
    pytest.param('{"prompt": [%s]}' % ",".join(["1"] * (MAX_ITEMS + 1)), "prompt",
                 "invalid_value", id="long-array"),
    pytest.param('{"m": [{"c": {%s}}]}' % ",".join('"k%d": 1' % k for k in range(MAX_ITEMS + 1)),
                 "m[0].c", "invalid_value", id="long-object"),
    pytest.param(b'\xff{}', None, "invalid_json", id="not-utf8"),
    pytest.param("", None, "invalid_json", id="empty"),
])
def test_bodies_refused_before_any_schema(text, param, code):
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    err = refused(parse_json, raw)
    assert (err.param, err.code) == (param, code)


@pytest.mark.parametrize("text", [
    pytest.param('{"a": %s}' % DEEP_ARRAYS(MAX_DEPTH - 1), id="at-limit"),
    pytest.param('{"prompt": [%s]}' % ",".join(["1"] * MAX_ITEMS), id="items-at-limit"),
    pytest.param('{"a": "\\ud83d\\ude00"}', id="escaped-pair"),
    pytest.param('{"a": "[[[[{{{{" }', id="brackets-in-strings"),
    pytest.param('{"a": 1e308, "b": -12345678901234567890}', id="big-but-fine"),
])
def test_bodies_accepted(text):
    assert parse_json(text.encode("utf-8")) == json.loads(text)


@pytest.mark.parametrize("schema, doc, param, code", [
    pytest.param("chat_completions.request", dict(CHAT, messages=[{"role": {"x": 1}, "content": "x"}]),
                 "messages[0].role", None, id="role-object"),
    pytest.param("chat_completions.request", dict(CHAT, messages=[{"role": ["user"], "content": "x"}]),
                 "messages[0].role", None, id="role-array"),
    pytest.param("chat_completions.request", dict(CHAT, n=1E2), "n", "invalid_type", id="n-1E2"),
    pytest.param("chat_completions.request", dict(CHAT, n=0.1e1), "n", "invalid_type", id="n-0.1e1"),
    pytest.param("completions.request", {"model": "m", "prompt": "x", "max_tokens": 5.0},
                 "max_tokens", "invalid_type", id="completions-float"),
    pytest.param("chat_completions.request", dict(CHAT, max_tokens=0), "max_tokens", "invalid_value",
                 id="max_tokens-0"),
    pytest.param("chat_completions.request", dict(CHAT, max_completion_tokens=-1),
                 "max_completion_tokens", "invalid_value", id="max_completion_tokens-neg"),
    pytest.param("chat_completions.request", dict(CHAT, seed=2 ** 63), "seed", "invalid_value",
                 id="seed-past-int64"),
    pytest.param("completions.request", {"model": "m", "prompt": "x", "seed": -2 ** 63 - 1}, "seed",
                 "invalid_value", id="completions-seed"),
    pytest.param("completions.request", {"model": "m", "prompt": "x", "max_tokens": 0}, "max_tokens",
                 "invalid_value", id="completions-max_tokens-0"),
    pytest.param("completions.request", {"model": "m", "prompt": "x", "logprobs": 6}, "logprobs",
                 "invalid_value", id="logprobs-6"),
    pytest.param("chat_completions.request", dict(CHAT, top_logprobs=21, logprobs=True),
                 "top_logprobs", "invalid_value", id="top_logprobs-21"),
    pytest.param("chat_completions.request", dict(CHAT, n=129), "n", "invalid_value", id="n-129"),
    pytest.param("embeddings.request", {"model": "m", "input": "x", "dimensions": 10 ** 12},
                 "dimensions", "invalid_value", id="dimensions-absurd"),
    pytest.param("responses.request", {"model": "m", "input": "x", "max_output_tokens": 15},
                 "max_output_tokens", "invalid_value", id="max_output_tokens-15"),
    pytest.param("responses.request", {"model": "m", "input": "x", "max_output_tokens": 2 ** 40},
                 "max_output_tokens", "invalid_value", id="max_output_tokens-huge"),
    pytest.param("chat_completions.request", dict(CHAT, model=""), "model", "invalid_value",
                 id="empty-model"),
    pytest.param("responses.request", {"input": "x"}, "model", "missing_required_parameter",
                 id="responses-no-model"),
])
def test_schema_limits(schema, doc, param, code):
    err = refused(schemas.validate, schema, doc)
    assert err.param == param
    if code is not None:
        assert err.code == code
    if err.code == "invalid_value" and isinstance(doc.get(param), int):
        assert any(c.isdigit() for c in err.message)  # the limit is named


def test_limits_on_the_shortcut_path_too():
    assert schemas._shortcut("chat_completions.request")(dict(CHAT, max_tokens=0))
    err = refused(schemas.validate, "chat_completions.request", dict(CHAT, max_tokens=0))
    assert "minimum of 1" in err.message


def _chat_tool(parameters=None, name="f"):
    function = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return dict(CHAT, tools=[{"type": "function", "function": function}])


@pytest.mark.parametrize("parameters", [
    pytest.param({"type": 5}, id="type-number"),
    pytest.param({"type": "object", "properties": []}, id="properties-array"),
    pytest.param({"type": "object", "properties": "x"}, id="properties-string"),
    pytest.param({"type": "object", "properties": {"a": "string"}}, id="property-string"),
    pytest.param({"type": "object", "properties": {"a": 3}}, id="property-number"),
    pytest.param({"type": "object", "required": "a"}, id="required-string"),
    pytest.param({"type": "object", "required": [1]}, id="required-numbers"),
    pytest.param({"type": "object", "enum": "a"}, id="enum-string"),
])
def test_tool_parameters_are_meta_validated(parameters):
    for openai_req, param in [(_chat_tool(parameters), "tools[0].function.parameters")]:
        checked = dict(translate.chat_output_schemas(openai_req))
        err = refused(schemas.check_json_schema, checked[param], param)
        assert (err.param, err.code) == (param, "invalid_value")
    plan = translate.openai_responses_to_ollama(
        {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f",
                                                 "parameters": parameters}]}, "m", lambda p: p + "_1")
    err = refused(schemas.check_json_schema, plan.schemas["tools[0].parameters"],
                  "tools[0].parameters")
    assert err.param == "tools[0].parameters"


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "naïve", "a.b", "f()"])
def test_function_names(name):
    err = refused(translate.openai_chat_to_ollama, _chat_tool(name=name), "m")
    assert (err.param, err.code) == ("tools[0].function.name", "invalid_value")
    assert len(err.message) < 320
    for tools, param in [
            ([{"type": "function", "name": name}], "tools[0].name"),
            ([{"type": "custom", "name": name}], "tools[0].name"),
            ([{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": name}]}],
             "tools[0].tools[0].name")]:
        err = refused(translate.openai_responses_to_ollama,
                      {"model": "m", "input": "x", "tools": tools}, "m", lambda p: p + "_1")
        assert (err.param, err.code) == (param, "invalid_value")


def test_namespaced_native_name_may_be_longer():
    plan = translate.openai_responses_to_ollama(
        {"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "n" * 60, "tools": [
            {"type": "function", "name": "f" * 64}]}]}, "m", lambda p: p + "_1")
    assert len(plan.native["tools"][0]["function"]["name"]) == 126


@pytest.mark.parametrize("url", ["data:image/png;base64,", "data:;base64,", "data:image/png;base64,@@",
                                 "data:image/png;base64,AAA"])
def test_empty_or_bad_data_urls(url):
    body = dict(CHAT, messages=[{"role": "user", "content": [{"type": "image_url",
                                                              "image_url": {"url": url}}]}])
    err = refused(translate.openai_chat_to_ollama, body, "m")
    assert (err.param, err.code) == ("messages[0].content[0].image_url.url", "invalid_value")


@pytest.mark.parametrize("call, args", [
    pytest.param(translate.openai_chat_to_ollama, (dict(CHAT, messages=[
        {"role": "tool", "tool_call_id": "c" * 5000, "content": "x"}]), "m"), id="tool_call_id"),
    pytest.param(translate.openai_responses_to_ollama, ({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "c" * 5000, "output": "x"}]}, "m",
        lambda p: p), id="call_id"),
    pytest.param(translate.openai_responses_to_ollama, ({"model": "m", "input": "x",
        "tools": [{"type": "function", "name": "f"}],
        "tool_choice": {"type": "function", "name": "g" * 5000}}, "m", lambda p: p), id="choice"),
    pytest.param(translate.input_items_page, ([], 20, "desc", "i" * 5000), id="after"),
    pytest.param(translate.ModelMap({}, ["a"], {}, "http://x").resolve, ("m" * 5000,), id="model"),
])
def test_echoed_values_are_clipped(call, args):
    with pytest.raises(InvalidRequest.__mro__[1]) as info:
        call(*args)
    assert len(info.value.message) < 400
    assert "\u2026" in info.value.message


def test_clip():
    assert translate.clip("x" * 200) == "x" * 200
    assert translate.clip("x" * 201) == "x" * 200 + "\u2026"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_upstream_encoder_refuses_non_finite(value):
    err = refused(_encode, {"options": {"temperature": value}})
    assert err.code == "invalid_value"
