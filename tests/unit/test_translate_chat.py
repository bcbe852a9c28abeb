"""Table tests of the pure chat translation (OpenAI <-> Ollama native)."""
import base64
import json

import pytest

from ollama_gateway import translate
from ollama_gateway.errors import InvalidRequest, UpstreamError

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
USER = {"role": "user", "content": "Hi"}


def chat(**fields):
    return dict({"model": "m", "messages": [USER]}, **fields)


def native(**fields):
    return dict({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                 "stream": False, "options": {}}, **fields)


# (openai request, native request)
REQUESTS = [
    pytest.param(chat(), native(), id="minimal-no-sampling-defaults"),
    pytest.param(chat(stream=True), native(stream=True), id="stream"),
    pytest.param(chat(temperature=0.2, top_p=0.9, frequency_penalty=0.5, presence_penalty=-1),
                 native(options={"temperature": 0.2, "top_p": 0.9, "frequency_penalty": 0.5,
                                 "presence_penalty": -1}), id="sampling-1to1"),
    pytest.param(chat(seed=42, temperature=0.7),
                 native(options={"seed": 42, "temperature": 0.7}), id="seed-leaves-temperature"),
    pytest.param(chat(seed=3.0), native(options={"seed": 3}), id="seed-integral-float-to-int"),
    pytest.param(chat(stop="END"), native(options={"stop": ["END"]}), id="stop-string"),
    pytest.param(chat(stop=["a", "b"]), native(options={"stop": ["a", "b"]}), id="stop-list"),
    pytest.param(chat(max_tokens=10), native(options={"num_predict": 10}), id="max_tokens"),
    pytest.param(chat(max_completion_tokens=12), native(options={"num_predict": 12}),
                 id="max_completion_tokens"),
    pytest.param(chat(max_tokens=50, max_completion_tokens=20),
                 native(options={"num_predict": 20}), id="both-limits-smaller-wins"),
    pytest.param(chat(response_format={"type": "text"}), native(), id="format-text"),
    pytest.param(chat(response_format={"type": "json_object"}), native(format="json"),
                 id="format-json_object"),
    pytest.param(chat(response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}),
        native(format={"type": "object", "properties": {"a": {"type": "integer"}}}),
        id="format-json_schema"),
    pytest.param(chat(reasoning_effort="none"), native(think=False), id="effort-none"),
    pytest.param(chat(reasoning_effort="minimal"), native(think="low"), id="effort-minimal"),
    pytest.param(chat(reasoning_effort="high"), native(think="high"), id="effort-high"),
    pytest.param(chat(reasoning_effort="xhigh"), native(think="max"), id="effort-xhigh"),
    pytest.param(chat(logprobs=True, top_logprobs=3), native(logprobs=True, top_logprobs=3),
                 id="logprobs"),
    pytest.param(chat(logprobs=False), native(), id="logprobs-false"),
    pytest.param(chat(n=1, logit_bias={}, user="u1", metadata={"k": "v"}, store=False,
                      parallel_tool_calls=True, tool_choice="auto", unknown_field=1),
                 native(), id="benign-values-accepted-not-forwarded"),
    pytest.param(chat(messages=[{"role": "developer", "content": "Be brief."}, USER]),
                 native(messages=[{"role": "system", "content": "Be brief."},
                                  {"role": "user", "content": "Hi"}]), id="developer-to-system"),
    pytest.param(chat(messages=[{"role": "system", "content": [
        {"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}]),
        native(messages=[{"role": "system", "content": "A\n\nB"}]), id="system-text-parts"),
    pytest.param(chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG, "detail": "low"}},
        {"type": "text", "text": "Be short."}]}]),
        native(messages=[{"role": "user", "content": "What is this?\n\nBe short.", "images": [PNG]}]),
        id="vision-parts-merged-one-message"),
    pytest.param(chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:;base64," + PNG}}]}]),
        native(messages=[{"role": "user", "content": "", "images": [PNG]}]),
        id="vision-empty-media-type"),
]


@pytest.mark.parametrize("openai_req, expected", REQUESTS)
def test_chat_request(openai_req, expected):
    assert translate.openai_chat_to_ollama(openai_req, "m") == expected


def test_chat_request_does_not_mutate_input():
    req = chat(stop="x", messages=[{"role": "user", "content": [{"type": "text", "text": "a"}]}])
    frozen = json.dumps(req, sort_keys=True)
    translate.openai_chat_to_ollama(req, "m", num_ctx=4096, keep_alive="10m")
    assert json.dumps(req, sort_keys=True) == frozen


def test_num_ctx_keep_alive_and_model_mapping():
    out = translate.openai_chat_to_ollama(chat(temperature=1), "llama3.2:latest",
                                          num_ctx=16384, keep_alive="30m")
    assert out["model"] == "llama3.2:latest"
    assert out["options"] == {"temperature": 1, "num_ctx": 16384}
    assert out["keep_alive"] == "30m"


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "minLength": 1}},
                   "required": ["city"], "additionalProperties": False}}}]

TOOL_HISTORY = [
    USER,
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": ""}}]},
    {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "Sunny"}]},
]


def test_tools_forwarded_verbatim():
    out = translate.openai_chat_to_ollama(chat(tools=TOOLS), "m")
    assert out["tools"] == TOOLS  # schema keys Ollama's own layer drops survive


def test_tool_choice_none_removes_tools():
    assert "tools" not in translate.openai_chat_to_ollama(chat(tools=TOOLS, tool_choice="none"), "m")


TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}
TWO_TOOLS = TOOLS + [TIME_TOOL]
WEATHER_PARAMS = TOOLS[0]["function"]["parameters"]
NO_PARAMS = {"type": "object", "properties": {}}
SYSTEM = {"role": "system", "content": "Be brief."}


def named(name):
    return {"type": "function", "function": {"name": name}}


def allowed(mode, *names):
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": [
        named(n) for n in names]}}


def instruction(*names):
    """The system message a forced choice adds (its text is tested in test_translate_forced)."""
    functions = [tool["function"] for tool in TWO_TOOLS]
    return {"role": "system", "content": translate.forced_tool(functions, names).instruction}


def tagged(name, arguments):
    return {"type": "object", "properties": {"name": {"enum": [name]}, "arguments": arguments},
            "required": ["name", "arguments"]}


NATIVE_USER = {"role": "user", "content": "Hi"}

# (openai request, native request): forced choices send format, never native tools
TOOL_CHOICES = [
    pytest.param(chat(tools=TOOLS, tool_choice="required"),
                 native(messages=[instruction("get_weather"), NATIVE_USER], format=WEATHER_PARAMS),
                 id="required-one-tool"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice="required"),
                 native(messages=[instruction("get_weather", "get_time"), NATIVE_USER],
                        format={"anyOf": [tagged("get_weather", WEATHER_PARAMS),
                                          tagged("get_time", NO_PARAMS)]}),
                 id="required-several-tools"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice=named("get_time")),
                 native(messages=[instruction("get_time"), NATIVE_USER], format=NO_PARAMS),
                 id="named-without-parameters"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice=named("get_weather"), stream=True),
                 native(messages=[instruction("get_weather"), NATIVE_USER], format=WEATHER_PARAMS,
                        stream=True), id="named-stream"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice=allowed("required", "get_time", "get_weather")),
                 native(messages=[instruction("get_time", "get_weather"), NATIVE_USER],
                        format={"anyOf": [tagged("get_time", NO_PARAMS),
                                          tagged("get_weather", WEATHER_PARAMS)]}),
                 id="allowed_tools-required-several"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice=allowed("required", "get_weather")),
                 native(messages=[instruction("get_weather"), NATIVE_USER], format=WEATHER_PARAMS),
                 id="allowed_tools-required-one"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice=allowed("auto", "get_time")),
                 native(tools=[TIME_TOOL]), id="allowed_tools-auto-narrows"),
    pytest.param(chat(tools=TWO_TOOLS, tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]}}),
        native(tools=TOOLS), id="allowed_tools-flat-entry"),
    pytest.param(chat(tools=TOOLS, tool_choice="required",
                      messages=[SYSTEM, {"role": "developer", "content": "Be kind."}, USER,
                                {"role": "system", "content": "Late."}]),
                 native(messages=[{"role": "system", "content": "Be brief."},
                                  {"role": "system", "content": "Be kind."},
                                  instruction("get_weather"), NATIVE_USER,
                                  {"role": "system", "content": "Late."}],
                        format=WEATHER_PARAMS), id="instruction-after-leading-system-messages"),
    pytest.param(chat(tools=TOOLS, tool_choice="required", response_format={"type": "json_object"}),
                 native(messages=[instruction("get_weather"), NATIVE_USER], format=WEATHER_PARAMS),
                 id="json_object-implied-by-forced-schema"),
    pytest.param(chat(tools=TOOLS, tool_choice="required", n=2),
                 native(messages=[instruction("get_weather"), NATIVE_USER], format=WEATHER_PARAMS),
                 id="n-2-each-choice-forced"),
    pytest.param(chat(tool_choice="none"), native(), id="none-without-tools"),
]


@pytest.mark.parametrize("openai_req, expected", TOOL_CHOICES)
def test_tool_choice_request(openai_req, expected):
    assert translate.openai_chat_to_ollama(openai_req, "m") == expected


@pytest.mark.parametrize("openai_req, expected", [
    # Every function tool's parameters are checked, forced or not: Ollama decodes them.
    pytest.param(chat(tools=TOOLS), [("tools[0].function.parameters", WEATHER_PARAMS)],
                 id="auto-every-tool"),
    pytest.param(chat(tools=TOOLS, tool_choice="required"),
                 [("tools[0].function.parameters", WEATHER_PARAMS)], id="required"),
    pytest.param(chat(tools=[TIME_TOOL] + TOOLS, tool_choice=named("get_weather")),
                 [("tools[1].function.parameters", WEATHER_PARAMS)], id="named-index"),
    pytest.param(chat(tools=[TIME_TOOL], tool_choice="required"), [], id="no-parameters"),
    pytest.param(chat(response_format={"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object"}}}),
        [("response_format.json_schema.schema", {"type": "object"})], id="response_format"),
    pytest.param(chat(response_format={"type": "json_object"}), [], id="json_object"),
])
def test_chat_output_schemas(openai_req, expected):
    assert translate.chat_output_schemas(openai_req) == expected


def test_chat_forced_tool():
    assert translate.chat_forced_tool(chat(tools=TOOLS)) is None
    assert translate.chat_forced_tool(chat(tools=TWO_TOOLS, tool_choice=allowed("auto", "get_time"))) is None
    forced = translate.chat_forced_tool(chat(tools=TWO_TOOLS, tool_choice="required"))
    assert forced.names == ("get_weather", "get_time")


def test_tool_history():
    out = translate.openai_chat_to_ollama(chat(messages=TOOL_HISTORY, tools=TOOLS), "m")
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "function": {"index": 0, "name": "get_weather",
                                          "arguments": {"city": "Paris"}}},
            {"id": "call_2", "function": {"index": 1, "name": "get_time", "arguments": {}}}]},
        {"role": "tool", "content": "12:00", "tool_name": "get_time", "tool_call_id": "call_2"},
        {"role": "tool", "content": "Sunny", "tool_name": "get_weather", "tool_call_id": "call_1"},
    ]


def test_assistant_reasoning_in_history_becomes_thinking():
    msgs = [USER, {"role": "assistant", "content": "4", "reasoning_content": "2+2"}, USER]
    out = translate.openai_chat_to_ollama(chat(messages=msgs), "m")
    assert out["messages"][1] == {"role": "assistant", "content": "4", "thinking": "2+2"}


# (openai request, param, code)
REFUSED = [
    pytest.param(chat(n=2, stream=True), "n", "unsupported_value", id="n-stream"),
    pytest.param(chat(logit_bias={"50256": -100}), "logit_bias", "unsupported_parameter",
                 id="logit_bias"),
    pytest.param(chat(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "x"}}),
                 "tool_choice.function.name", "invalid_value", id="tool_choice-named-unknown"),
    pytest.param(chat(tools=TOOLS, tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "x"}}]}}),
        "tool_choice.allowed_tools.tools[0].function.name", "invalid_value",
        id="allowed_tools-unknown"),
    pytest.param(chat(tools=TOOLS, tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": []}}), "tool_choice.allowed_tools.tools", "invalid_value",
        id="allowed_tools-empty"),
    pytest.param(chat(tool_choice="required"), "tool_choice", "invalid_value",
                 id="tool_choice-required-without-tools"),
    pytest.param(chat(tools=[], tool_choice={"type": "function", "function": {"name": "x"}}),
                 "tool_choice", "invalid_value", id="tool_choice-named-empty-tools"),
    pytest.param(chat(tools=TOOLS, tool_choice={"type": "custom", "custom": {"name": "x"}}),
                 "tool_choice.type", "unsupported_value", id="tool_choice-custom"),
    pytest.param(chat(tools=TOOLS, tool_choice="required", response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
        "response_format", "unsupported_value", id="forced-with-json_schema"),
    pytest.param(chat(tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0].type",
                 "unsupported_value", id="custom-tool"),
    pytest.param(chat(audio={"voice": "alloy", "format": "mp3"}), "audio",
                 "unsupported_parameter", id="audio"),
    pytest.param(chat(modalities=["text", "audio"]), "modalities", "unsupported_value",
                 id="modalities-audio"),
    pytest.param(chat(web_search_options={}), "web_search_options", "unsupported_parameter",
                 id="web_search"),
    pytest.param(chat(functions=[{"name": "f"}]), "functions", "unsupported_parameter",
                 id="functions"),
    pytest.param(chat(stream_options={"include_usage": True}), "stream_options", "invalid_value",
                 id="stream_options-without-stream"),
    pytest.param(chat(top_logprobs=2), "top_logprobs", "invalid_value",
                 id="top_logprobs-without-logprobs"),
    pytest.param(chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
                 "response_format.json_schema.schema", "missing_required_parameter",
                 id="json_schema-without-schema"),
    pytest.param(chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]),
        "messages[0].content[0].image_url.url", "unsupported_value", id="image-http-url"),
    pytest.param(chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + PNG}}]}]),
        "messages[0].content[0].image_url.url", "invalid_value", id="image-gif"),
    pytest.param(chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not-base64@@"}}]}]),
        "messages[0].content[0].image_url.url", "invalid_value", id="image-bad-base64"),
    pytest.param(chat(messages=[USER, {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]),
        "messages[1].content[0].type", "unsupported_value", id="input_audio-part"),
    pytest.param(chat(messages=[{"role": "tool", "tool_call_id": "nope", "content": "x"}]),
                 "messages[0].tool_call_id", "invalid_value", id="tool-unknown-call-id"),
    pytest.param(chat(messages=[USER, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]),
        "messages[1].tool_calls[0].function.arguments", "invalid_value", id="tool-args-not-json"),
    pytest.param(chat(messages=[USER, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]),
        "messages[1].tool_calls[0].function.arguments", "invalid_value", id="tool-args-not-object"),
    pytest.param(chat(messages=[{"role": "function", "name": "f", "content": "x"}]),
                 "messages[0].role", "unsupported_value", id="function-role"),
]


@pytest.mark.parametrize("openai_req, param, code", REFUSED)
def test_chat_request_refused(openai_req, param, code):
    with pytest.raises(InvalidRequest) as info:
        translate.openai_chat_to_ollama(openai_req, "m")
    assert (info.value.param, info.value.code, info.value.status) == (param, code, 400)


def test_ignored_params_listed():
    req = chat(user="u", metadata={}, store=True, temperature=1, service_tier="auto")
    assert translate.chat_ignored_params(req) == ["metadata", "service_tier", "store", "user"]


# -- responses -----------------------------------------------------------------

def done(**fields):
    return dict({"model": "m", "created_at": "2026-08-21T10:00:01.5Z",
                 "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 9}, **fields)


def respond(native_reply, **kw):
    return translate.ollama_chat_to_openai(native_reply, "chatcmpl-abc", 1700000000, "gpt-x", **kw)


def test_response_plain():
    out = respond(done(message={"role": "assistant", "content": "Hello!"}))
    assert out == {
        # Ollama's created_at (2026-08-21T10:00:01Z), not the fallback clock.
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1787306401,
        "model": "gpt-x", "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!",
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 26, "completion_tokens": 9, "total_tokens": 35}}


CALL = {"id": "call_k3x9q2ab", "function": {"index": 0, "name": "get_weather",
                                            "arguments": {"city": "Paris", "unit": "°C"}}}


@pytest.mark.parametrize("done_reason, calls, expected", [
    pytest.param("stop", [], "stop", id="stop"),
    pytest.param("length", [], "length", id="length"),
    pytest.param(None, [], "stop", id="missing-defaults-to-stop"),
    pytest.param("load", [], "stop", id="load"),
    pytest.param("stop", [CALL], "tool_calls", id="tool_calls"),
    pytest.param("length", [CALL], "length", id="length-beats-tool_calls"),
])
def test_finish_reason(done_reason, calls, expected):
    reply = done(done_reason=done_reason, message={"role": "assistant", "content": "",
                                                   "tool_calls": calls})
    assert respond(reply)["choices"][0]["finish_reason"] == expected


def test_response_tool_calls_content_null_arguments_string():
    message = respond(done(message={"role": "assistant", "content": "",
                                    "tool_calls": [CALL]}))["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_k3x9q2ab", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris","unit":"°C"}'}}]


def test_response_tool_call_without_native_id_gets_unique_id():
    call = {"function": {"name": "f", "arguments": {}}}
    message = respond(done(message={"role": "assistant", "content": "",
                                    "tool_calls": [call, call]}))["choices"][0]["message"]
    ids = [c["id"] for c in message["tool_calls"]]
    assert ids == ["call_abc_0", "call_abc_1"]


def test_parallel_tool_calls_false_keeps_first_call():
    message = respond(done(message={"role": "assistant", "content": "", "tool_calls": [
        CALL, dict(CALL, id="call_2")]}), parallel_tool_calls=False)["choices"][0]["message"]
    assert [c["id"] for c in message["tool_calls"]] == ["call_k3x9q2ab"]


FORCED_ONE = translate.forced_tool([TOOLS[0]["function"]], ["get_weather"])
FORCED_TWO = translate.forced_tool([t["function"] for t in TWO_TOOLS], ["get_weather", "get_time"])


# (native reply, forced, expected message, expected finish_reason)
FORCED_REPLIES = [
    pytest.param(done(message={"role": "assistant", "content": '{"city": "Paris"}'}), FORCED_ONE,
                 {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                     {"id": "call_abc_0", "type": "function",
                      "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
                 "tool_calls", id="one-function"),
    pytest.param(done(message={"role": "assistant", "content": '{"name": "get_time", "arguments": {}}'}),
                 FORCED_TWO,
                 {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                     {"id": "call_abc_0", "type": "function",
                      "function": {"name": "get_time", "arguments": "{}"}}]},
                 "tool_calls", id="several-functions"),
    pytest.param(done(done_reason="length", message={"role": "assistant", "content": '{"city": "Pa'}),
                 FORCED_ONE,
                 {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                     {"id": "call_abc_0", "type": "function",
                      "function": {"name": "get_weather", "arguments": '{"city":"Pa'}}]},
                 "length", id="truncated-is-length"),
    pytest.param(done(message={"role": "assistant", "content": '{"city": "Paris"}',
                               "thinking": "Paris it is"}), FORCED_ONE,
                 {"role": "assistant", "content": None, "refusal": None,
                  "reasoning_content": "Paris it is", "tool_calls": [
                      {"id": "call_abc_0", "type": "function",
                       "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
                 "tool_calls", id="thinking-kept"),
]


@pytest.mark.parametrize("native_reply, forced, message, finish", FORCED_REPLIES)
def test_forced_response(native_reply, forced, message, finish):
    choice = respond(native_reply, forced=forced)["choices"][0]
    assert (choice["message"], choice["finish_reason"]) == (message, finish)


def test_forced_response_bad_reply_is_upstream_error():
    with pytest.raises(UpstreamError) as info:
        respond(done(message={"role": "assistant", "content": "It is sunny."}), forced=FORCED_ONE)
    assert info.value.status == 502


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_field(field):
    reply = done(message={"role": "assistant", "content": "4", "thinking": "2+2=4"})
    assert respond(reply, reasoning_field=field)["choices"][0]["message"][field] == "2+2=4"
    assert "thinking" not in respond(reply, reasoning_field="none")["choices"][0]["message"]


def test_logprobs_filled_to_openai_shape():
    reply = done(message={"role": "assistant", "content": "Hi"},
                 logprobs=[{"token": "Hi", "logprob": -0.1,
                            "top_logprobs": [{"token": "Hi", "logprob": -0.1},
                                             {"token": "Yo", "logprob": -2.5, "bytes": [89, 111]}]}])
    assert respond(reply)["choices"][0]["logprobs"] == {"refusal": None, "content": [
        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": [
            {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
            {"token": "Yo", "logprob": -2.5, "bytes": [89, 111]}]}]}


def test_merge_for_n():
    a = respond(done(message={"role": "assistant", "content": "A"}))
    b = respond(done(message={"role": "assistant", "content": "B"}, eval_count=1))
    merged = translate.merge_choices([a, b])
    assert [(c["index"], c["message"]["content"]) for c in merged["choices"]] == [(0, "A"), (1, "B")]
    assert merged["usage"] == {"prompt_tokens": 52, "completion_tokens": 10, "total_tokens": 62}


# -- streaming -----------------------------------------------------------------

def line(content="", **fields):
    return dict({"model": "m", "created_at": "2026-08-21T10:00:00Z",
                 "message": dict({"role": "assistant", "content": content},
                                 **fields.pop("message_extra", {})), "done": False}, **fields)


def run_stream(lines, **kw):
    stream = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x", **kw)
    chunks = []
    for native_line in lines:
        chunks.extend(stream.feed(native_line))
    assert stream.done
    return chunks


def deltas(chunks):
    return [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]]


def test_stream_plain_sequence():
    chunks = run_stream([line("Hel"), line("lo"), done()])
    assert deltas(chunks) == [({"role": "assistant", "content": "Hel"}, None),
                              ({"content": "lo"}, None), ({}, "stop")]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("chatcmpl-abc", 1787306400, "gpt-x", "chat.completion.chunk")}  # the first line's time
    assert all("usage" not in c for c in chunks)


def test_created_falls_back_to_the_gateway_clock():
    reply = done(message={"role": "assistant", "content": "x"})
    del reply["created_at"]
    assert respond(reply)["created"] == 1700000000
    chunks = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x").feed(
        dict(line("x"), created_at="garbage"))
    assert chunks[0]["created"] == 1700000000


def test_stream_include_usage():
    chunks = run_stream([line("Hi"), done()], include_usage=True)
    assert [c["usage"] for c in chunks[:-1]] == [None, None]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 26, "completion_tokens": 9, "total_tokens": 35}


def test_stream_empty_reply_still_opens_with_role():
    assert deltas(run_stream([done()])) == [({"role": "assistant", "content": ""}, None),
                                            ({}, "stop")]


def test_stream_skips_empty_intermediate_lines():
    assert deltas(run_stream([line("a"), line(""), line("b"), done()])) == [
        ({"role": "assistant", "content": "a"}, None), ({"content": "b"}, None), ({}, "stop")]


def test_stream_tool_calls_get_distinct_indexes_and_finish_reason():
    call2 = {"id": "call_2", "function": {"index": 0, "name": "f", "arguments": {}}}
    chunks = run_stream([line("", message_extra={"tool_calls": [CALL]}),
                         done(message={"role": "assistant", "content": "", "tool_calls": [call2]})])
    got = deltas(chunks)
    assert got[0][0]["tool_calls"] == [{"index": 0, "id": "call_k3x9q2ab", "type": "function",
                                        "function": {"name": "get_weather",
                                                     "arguments": '{"city":"Paris","unit":"°C"}'}}]
    assert "content" not in got[1][0] and got[1][0]["tool_calls"][0]["index"] == 1
    assert got[-1] == ({}, "tool_calls")


def test_stream_length_with_tool_call():
    got = deltas(run_stream([line("", message_extra={"tool_calls": [CALL]}),
                             done(done_reason="length")]))
    assert got[-1] == ({}, "length")


def test_stream_thinking_then_content():
    got = deltas(run_stream([line("", message_extra={"thinking": "hmm"}), line("4"), done()],
                            reasoning_field="reasoning"))
    assert got[:2] == [({"role": "assistant", "content": "", "reasoning": "hmm"}, None),
                       ({"content": "4"}, None)]


def test_stream_logprobs():
    chunks = run_stream([line("Hi", logprobs=[{"token": "Hi", "logprob": -0.5}]), done()])
    assert chunks[0]["choices"][0]["logprobs"]["content"][0]["token"] == "Hi"
    assert chunks[-1]["choices"][0]["logprobs"] is None


# -- forced tool calls, streamed ---------------------------------------------------

def accumulate(chunks):
    """Return (tool calls, content, finish_reason) as openai-python's stream helper adds them up."""
    calls, content, finish = {}, "", None
    for chunk in chunks:
        if not chunk["choices"]:
            continue
        delta = chunk["choices"][0]["delta"]
        content += delta.get("content") or ""
        finish = chunk["choices"][0]["finish_reason"] or finish
        for part in delta.get("tool_calls") or ():
            call = calls.setdefault(part["index"], {"function": {"name": "", "arguments": ""}})
            for key in ("id", "type"):
                if key in part:
                    call[key] = part[key]
            for key in ("name", "arguments"):
                call["function"][key] += (part.get("function") or {}).get(key) or ""
    return [calls[i] for i in sorted(calls)], content or None, finish


# (content pieces as Ollama streams them, forced, done_reason)
FORCED_STREAMS = [
    pytest.param(['{"city', '": "Par', 'is" ', "}"], FORCED_ONE, "stop", id="one"),
    pytest.param(["\n", '{ "city" :', ' "a \\" b"', "}\n"], FORCED_ONE, "stop",
                 id="one-whitespace-and-escapes"),
    pytest.param(['{"name": "get_time",', ' "arguments": {}}'], FORCED_TWO, "stop", id="several"),
    pytest.param(['{"city": ', '"Pa'], FORCED_ONE, "length", id="one-truncated"),
    pytest.param(['{"name": "get_weather", ', '"arguments": {"ci'], FORCED_TWO, "length",
                 id="several-truncated"),
]


@pytest.mark.parametrize("pieces, forced, reason", FORCED_STREAMS)
def test_forced_stream_accumulates_to_the_non_streamed_call(pieces, forced, reason):
    chunks = run_stream([line(p) for p in pieces] + [done(done_reason=reason)], forced=forced)
    plain = respond(done(done_reason=reason, message={"role": "assistant",
                                                      "content": "".join(pieces)}), forced=forced)
    message = plain["choices"][0]["message"]
    assert accumulate(chunks) == (message["tool_calls"], None, plain["choices"][0]["finish_reason"])


def test_forced_stream_one_function_sends_head_then_argument_deltas():
    got = deltas(run_stream([line('{"city": '), line('"Paris"}'), done()], forced=FORCED_ONE))
    assert got == [
        ({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_abc_0", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({}, "tool_calls")]


def test_forced_stream_several_functions_send_the_call_at_the_end():
    stream = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x", forced=FORCED_TWO,
                                  include_usage=True)
    first = stream.feed(line('{"name": "get_time", '))
    assert deltas(first) == [({"role": "assistant", "content": None}, None)]
    assert stream.feed(line('"arguments": {}}')) == []
    last = stream.feed(done())
    assert deltas(last) == [({"tool_calls": [{"index": 0, "id": "call_abc_0", "type": "function",
                                               "function": {"name": "get_time",
                                                            "arguments": "{}"}}]}, None),
                            ({}, "tool_calls")]
    assert last[-1]["usage"]["total_tokens"] == 35


def test_forced_stream_thinking_goes_to_the_reasoning_field():
    got = deltas(run_stream([line("", message_extra={"thinking": "hmm"}), line('{"city": "x"}'),
                             done()], forced=FORCED_ONE, reasoning_field="reasoning"))
    assert got[0][0]["reasoning"] == "hmm" and got[0][0]["tool_calls"][0]["id"] == "call_abc_0"


@pytest.mark.parametrize("forced", [FORCED_ONE, FORCED_TWO])
def test_forced_stream_bad_reply_raises_at_done(forced):
    stream = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x", forced=forced)
    stream.feed(line("It is sunny."))
    with pytest.raises(UpstreamError):
        stream.feed(done())
    assert not stream.done


def test_fast_chunk_declines_when_forced():
    stream = translate.ChatStream("chatcmpl-abc", 1, "m", forced=FORCED_ONE)
    stream.feed(line("{"))
    assert stream.fast_chunk(go_json(line('"city"'))) is None


# -- the byte-level shortcut for plain content lines ------------------------------

def go_json(obj):
    """Encode like Ollama (Go): compact, HTML characters escaped, UTF-8 kept."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


FAST_LINES = [
    pytest.param(line("Hello"), True, id="plain"),
    pytest.param(line(" héllo 世界 🎉"), True, id="unicode"),
    pytest.param(line("a < b && c > d"), True, id="go-html-escapes"),
    pytest.param(line("tab\tnew\nline back\\slash"), True, id="escapes"),
    pytest.param(line("ends with \\"), False, id="trailing-backslash-falls-back"),
    pytest.param(line('say "hi"'), False, id="quote-falls-back"),
    pytest.param(line(""), True, id="empty-content-no-chunk"),
    pytest.param(line("", message_extra={"thinking": "hmm"}), False, id="thinking"),
    pytest.param(line("", message_extra={"tool_calls": [CALL]}), False, id="tool-call"),
    pytest.param(line("Hi", logprobs=[{"token": "Hi", "logprob": -0.5}]), False, id="logprobs"),
    pytest.param(done(message={"role": "assistant", "content": "x"}), False, id="done"),
    pytest.param({"error": "boom"}, False, id="error-line"),
]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("native_line, fast", FAST_LINES)
def test_fast_chunk_is_feed_or_declines(native_line, fast, include_usage):
    stream = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x", include_usage=include_usage)
    reference = translate.ChatStream("chatcmpl-abc", 1700000000, "gpt-x", include_usage=include_usage)
    stream.feed(line("first"))
    reference.feed(line("first"))
    raw = go_json(native_line)
    got = stream.fast_chunk(raw)
    if not fast:
        assert got is None
        return
    expected = reference.feed(native_line)
    assert ([json.loads(got)] if got else []) == expected


def test_fast_chunk_declines_before_the_role_chunk():
    stream = translate.ChatStream("chatcmpl-abc", 1, "m")
    assert stream.fast_chunk(go_json(line("Hello"))) is None
