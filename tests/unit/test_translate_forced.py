"""Table tests of forced tool choices as constrained output (translate/forced.py)."""
import json

import pytest

from ollama_gateway import translate
from ollama_gateway.errors import InvalidRequest, UpstreamError
from ollama_gateway.translate.forced import JSONCompactor, compact_json

WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"], "additionalProperties": False}}
TIME = {"name": "get_time"}  # no description, no parameters
EMPTY = {"type": "object", "properties": {}}


def tagged(name, arguments):
    return {"type": "object", "properties": {"name": {"enum": [name]}, "arguments": arguments},
            "required": ["name", "arguments"]}


# (functions, names, expected names, expected native format)
FORMATS = [
    pytest.param([WEATHER], ["get_weather"], ("get_weather",), WEATHER["parameters"],
                 id="one-function-format-is-its-parameters"),
    pytest.param([WEATHER, TIME], ["get_time"], ("get_time",), EMPTY,
                 id="one-function-without-parameters"),
    pytest.param([WEATHER, TIME], ["get_weather", "get_time"], ("get_weather", "get_time"),
                 {"anyOf": [tagged("get_weather", WEATHER["parameters"]), tagged("get_time", EMPTY)]},
                 id="several-anyOf-tagged-with-enum"),
    pytest.param([WEATHER, TIME], ["get_time", "get_weather"], ("get_time", "get_weather"),
                 {"anyOf": [tagged("get_time", EMPTY), tagged("get_weather", WEATHER["parameters"])]},
                 id="several-in-the-order-of-names"),
    pytest.param([WEATHER, TIME], ["get_time", "get_time"], ("get_time",), EMPTY,
                 id="repeated-name-counts-once"),
]


@pytest.mark.parametrize("functions, names, expected_names, expected_format", FORMATS)
def test_forced_tool_format(functions, names, expected_names, expected_format):
    forced = translate.forced_tool(functions, names)
    assert forced.names == expected_names
    assert forced.format == expected_format
    assert "const" not in json.dumps(forced.format)


def test_instruction_names_describes_and_shows_parameters():
    one = translate.forced_tool([WEATHER, TIME], ["get_weather"]).instruction
    assert '"get_weather"' in one and "Current weather for a city" in one
    assert json.dumps(WEATHER["parameters"], separators=(",", ":")) in one
    assert "get_time" not in one
    several = translate.forced_tool([WEATHER, TIME], ["get_weather", "get_time"]).instruction
    assert '"name"' in several and '"arguments"' in several
    assert "Function: get_weather" in several and "Function: get_time" in several


def test_forced_tool_unknown_name_is_400():
    with pytest.raises(InvalidRequest) as info:
        translate.forced_tool([WEATHER], ["nope"])
    assert (info.value.param, info.value.code) == ("tool_choice", "invalid_value")


def test_forced_tool_does_not_mutate_or_share_input():
    functions = [json.loads(json.dumps(WEATHER)), {"name": "f"}]
    frozen = json.dumps(functions, sort_keys=True)
    forced = translate.forced_tool(functions, ["f"])
    forced.format["properties"]["x"] = {}
    assert translate.forced_tool(functions, ["f"]).format == EMPTY
    assert json.dumps(functions, sort_keys=True) == frozen


ONE = translate.forced_tool([WEATHER], ["get_weather"])
SEVERAL = translate.forced_tool([WEATHER, TIME], ["get_weather", "get_time"])

# (reply content, forced, truncated, expected (name, arguments))
REPLIES = [
    pytest.param('{"city": "Paris"}', ONE, False, ("get_weather", '{"city":"Paris"}'),
                 id="one-arguments-compacted"),
    pytest.param('\n{ "city" : "Le Puy en Velay" }\n ', ONE, False,
                 ("get_weather", '{"city":"Le Puy en Velay"}'), id="one-spaces-in-strings-kept"),
    pytest.param('{"city": "\\u00e9 \\"q\\" °"}', ONE, False,
                 ("get_weather", '{"city":"\\u00e9 \\"q\\" °"}'), id="one-escapes-kept-as-written"),
    pytest.param('{"name": "get_time", "arguments": {}}', SEVERAL, False, ("get_time", "{}"),
                 id="several-tagged"),
    pytest.param('{"name": "get_weather", "arguments": {"city": "Oslo"}}', SEVERAL, False,
                 ("get_weather", '{"city":"Oslo"}'), id="several-arguments-re-encoded"),
    pytest.param('{"city": "Par', ONE, True, ("get_weather", '{"city":"Par'),
                 id="one-truncated-raw-text"),
    pytest.param('', ONE, True, ("get_weather", ""), id="one-truncated-empty"),
    pytest.param('{"name": "get_time", "arguments": {"a": ', SEVERAL, True,
                 ("get_time", '{"a":'), id="several-truncated-after-name"),
    pytest.param('{"na', SEVERAL, True, ("get_weather", '{"na'), id="several-truncated-before-name"),
    pytest.param('{"city": "Paris"}', ONE, True, ("get_weather", '{"city":"Paris"}'),
                 id="complete-despite-length"),
]


@pytest.mark.parametrize("content, forced, truncated, expected", REPLIES)
def test_forced_reply_to_call(content, forced, truncated, expected):
    assert translate.forced_reply_to_call(content, forced, truncated) == expected


@pytest.mark.parametrize("content, forced", [
    pytest.param("Sure! Here is the weather.", ONE, id="prose"),
    pytest.param("", ONE, id="empty"),
    pytest.param("[1, 2]", ONE, id="one-not-an-object"),
    pytest.param('{"city": "Paris"', ONE, id="one-cut-without-length"),
    pytest.param('{"city": "Paris"}', SEVERAL, id="several-untagged"),
    pytest.param('{"name": "other", "arguments": {}}', SEVERAL, id="several-unknown-name"),
    pytest.param('{"name": "get_time", "arguments": "x"}', SEVERAL, id="several-arguments-not-object"),
])
def test_bad_reply_is_upstream_error(content, forced):
    with pytest.raises(UpstreamError) as info:
        translate.forced_reply_to_call(content, forced)
    assert info.value.status == 502
    assert info.value.message == "Ollama's reply does not match the forced tool's schema."


@pytest.mark.parametrize("text", [
    '{ "a" : [1, 2, {"b": "x y"}], "c": "\\\\" , "d": "\\" }" }',
    '\t{"k":\n"v"}\r\n',
    '{"s": "tab\\tin string", "t" : true}',
])
def test_compactor_gives_the_same_text_in_any_split(text):
    whole = compact_json(text)
    assert whole == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    for size in (1, 2, 3, 7):
        compactor = JSONCompactor()
        assert "".join(compactor.feed(text[i:i + size]) for i in range(0, len(text), size)) == whole


SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "Hi"}
ADDED = {"role": "system", "content": "call f"}


@pytest.mark.parametrize("messages, expected", [
    pytest.param([USER], [ADDED, USER], id="no-system"),
    pytest.param([SYSTEM, USER], [SYSTEM, ADDED, USER], id="after-system"),
    pytest.param([SYSTEM, SYSTEM, USER, SYSTEM], [SYSTEM, SYSTEM, ADDED, USER, SYSTEM],
                 id="after-leading-systems-only"),
    pytest.param([SYSTEM], [SYSTEM, ADDED], id="only-system"),
])
def test_with_instruction(messages, expected):
    assert translate.with_instruction(messages, "call f") == expected


@pytest.mark.parametrize("entries, expected", [
    pytest.param([{"type": "function", "function": {"name": "get_time"}}], ["get_time"], id="nested"),
    pytest.param([{"type": "function", "name": "get_time"},
                  {"type": "function", "name": "get_weather"}], ["get_time", "get_weather"],
                 id="flat-responses-style"),
])
def test_allowed_tool_names(entries, expected):
    assert translate.allowed_tool_names(entries, ["get_weather", "get_time"], "p") == expected


@pytest.mark.parametrize("entries, param, code", [
    pytest.param([{"type": "function", "function": {"name": "x"}}], "p[0].function.name",
                 "invalid_value", id="nested-unknown"),
    pytest.param([{"type": "function", "name": "get_time"}, {"type": "function", "name": "x"}],
                 "p[1].name", "invalid_value", id="flat-unknown"),
    pytest.param([{"type": "custom", "custom": {"name": "x"}}], "p[0].type", "unsupported_value",
                 id="custom"),
    pytest.param([], "p", "invalid_value", id="empty"),
])
def test_allowed_tool_names_refused(entries, param, code):
    with pytest.raises(InvalidRequest) as info:
        translate.allowed_tool_names(entries, ["get_weather", "get_time"], "p")
    assert (info.value.param, info.value.code) == (param, code)
