"""/v1/chat/completions end to end: the official openai SDK against the gateway
under real gunicorn (deploy config), with the Ollama emulator behind it."""
import base64
import json

import jsonschema
import openai
import pydantic
import pytest

from ..ollama_emulator import chat_line, error_reply, json_reply, ndjson_reply
from ..schema_check import assert_matches

pytestmark = pytest.mark.integration

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n tiny").decode()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}


@pytest.fixture
def client(gunicorn_url, ollama):
    with openai.OpenAI(base_url=gunicorn_url, api_key="unused", max_retries=0,
                       timeout=20) as sdk:
        yield sdk


def ask(text="Hello there"):
    return [{"role": "user", "content": text}]


def test_plain(client, ollama):
    completion = client.chat.completions.create(model="llama3.2", messages=ask())
    assert_matches("chat_completions.response", completion.model_dump(mode="json", exclude_unset=True))
    choice = completion.choices[0]
    assert choice.message.content == "Echo: Hello there"
    assert choice.finish_reason == "stop"
    assert completion.model == "llama3.2"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    sent = ollama.last("/api/chat").json
    assert sent["stream"] is False and sent["options"]["num_ctx"] == 8192
    assert "temperature" not in sent["options"] and "top_p" not in sent["options"]


def test_ids_are_unique(client):
    ids = {client.chat.completions.create(model="llama3.2", messages=ask()).id for _ in range(5)}
    assert len(ids) == 5


def test_streaming(client):
    chunks = list(client.chat.completions.create(model="llama3.2", messages=ask("one two three"),
                                                 stream=True))
    for chunk in chunks:
        assert_matches("chat_completions.chunk", chunk.model_dump(mode="json", exclude_unset=True))
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: one two three"
    finishes = [c.choices[0].finish_reason for c in chunks]
    assert finishes[-1] == "stop" and not any(finishes[:-1])
    assert all(c.usage is None for c in chunks)


def test_streaming_include_usage(client):
    chunks = list(client.chat.completions.create(
        model="llama3.2", messages=ask(), stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_tools(client, ollama):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("Weather in Paris?"),
                                                tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments), dict)
    # the whole tool schema reached Ollama, additionalProperties included
    assert ollama.last("/api/chat").json["tools"] == [WEATHER]

    # second turn: the result goes back matched by tool_call_id
    history = ask("Weather in Paris?") + [choice.message.model_dump(exclude_none=True),
                                          {"role": "tool", "tool_call_id": call.id,
                                           "content": "Sunny"}]
    second = client.chat.completions.create(model="llama3.2", messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    native_tool = ollama.last("/api/chat").json["messages"][-1]
    assert native_tool == {"role": "tool", "content": "Sunny", "tool_name": "get_weather",
                           "tool_call_id": call.id}


def test_tools_streamed_match_non_streamed(client):
    plain = client.chat.completions.create(model="llama3.2", messages=ask("Weather?"),
                                           tools=[WEATHER]).choices[0].message.tool_calls[0]
    with client.chat.completions.stream(model="llama3.2", messages=ask("Weather?"),
                                        tools=[WEATHER]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert (streamed.function.name, json.loads(streamed.function.arguments)) == (
        plain.function.name, json.loads(plain.function.arguments))


def test_tool_choice_none_hides_tools(client, ollama):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("Weather?"),
                                                tools=[WEATHER], tool_choice="none")
    assert completion.choices[0].finish_reason == "stop"
    assert "tools" not in ollama.last("/api/chat").json


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_structured_output_parse(client, ollama):
    completion = client.chat.completions.parse(model="llama3.2", messages=ask("Invent a person"),
                                               response_format=Person)
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert ollama.last("/api/chat").json["format"]["required"] == ["name", "age"]


def test_json_mode(client, ollama):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("JSON please"),
                                                response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    assert ollama.last("/api/chat").json["format"] == "json"


def test_image_part(client, ollama):
    completion = client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]}])
    assert completion.choices[0].message.content
    sent = ollama.last("/api/chat").json["messages"]
    assert sent == [{"role": "user", "content": "What is this?", "images": [PNG]}]


def test_image_http_url_refused_before_upstream(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert info.value.param == "messages[0].content[0].image_url.url"
    assert ollama.requests == []


def test_options_reach_ollama(client, ollama):
    client.chat.completions.create(
        model="qwen3", messages=ask(), temperature=0.3, top_p=0.8, seed=7, stop=["\n\n"],
        max_completion_tokens=64, frequency_penalty=0.1, presence_penalty=0.2,
        reasoning_effort="low", logprobs=True, top_logprobs=2, user="u-1")
    sent = ollama.last("/api/chat").json
    assert sent["options"] == {"temperature": 0.3, "top_p": 0.8, "seed": 7, "stop": ["\n\n"],
                               "num_predict": 64, "frequency_penalty": 0.1,
                               "presence_penalty": 0.2, "num_ctx": 8192}
    assert (sent["think"], sent["logprobs"], sent["top_logprobs"]) == ("low", True, 2)


def test_logprobs_returned(client):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("a b"),
                                                logprobs=True, top_logprobs=2)
    content = completion.choices[0].logprobs.content
    assert "".join(t.token for t in content) == completion.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 for t in content)


def test_max_tokens_gives_length(client):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("a b c d e f"),
                                                max_completion_tokens=2)
    assert completion.choices[0].finish_reason == "length"


def test_n_choices(client, ollama):
    completion = client.chat.completions.create(model="llama3.2", messages=ask(), n=3, seed=5)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert [r.json["options"]["seed"] for r in ollama.requests] == [5, 6, 7]


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=ask())
    assert info.value.code == "model_not_found"
    assert "no-such-model" in info.value.message


def test_unknown_model_streaming_is_not_found_before_stream(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=ask(), stream=True)


def test_invalid_request_is_bad_request_and_not_sent(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=ask(), temperature=5)
    assert info.value.param == "temperature"
    assert info.value.type == "invalid_request_error"
    assert ollama.requests == []


def test_ollama_400_is_bad_request(client, ollama):
    ollama.script("/api/chat", error_reply(400, "\"llama3.2\" does not support thinking"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=ask())
    assert "does not support thinking" in info.value.message


def test_mid_stream_error_raises_api_error(client, ollama):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel"),
                                             {"error": "runner crashed"}]))
    stream = client.chat.completions.create(model="llama3.2", messages=ask(), stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["Hel"]
    assert "runner crashed" in info.value.message


def test_first_chunk_arrives_before_upstream_finishes(client, ollama):
    lines = [chat_line("llama3.2", "first")] + [chat_line("llama3.2", " more")] * 3 + [
        chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=1, eval_count=4)]
    # The emulator paces its lines 0.5 s apart: the reply takes 2 s upstream.
    ollama.script("/api/chat", ndjson_reply(lines, delay=0.5))
    stream = client.chat.completions.create(model="llama3.2", messages=ask(), stream=True)
    first = next(iter(stream))
    upstream = ollama.last("/api/chat")
    assert first.choices[0].delta.content == "first"
    assert not upstream.finished.is_set()  # the emulator is still writing
    rest = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert rest == [" more"] * 3
    assert upstream.finished.wait(5)


# -- forced tool choices (constrained output behind the scenes) ------------------------

TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]},
                                                    "precise": {"type": "boolean"}},
                   "required": ["zone", "precise"]}}}
PARAMETERS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in (WEATHER, TIME)}
FORCED_CHOICES = [
    pytest.param("required", id="required"),
    pytest.param({"type": "function", "function": {"name": "get_time"}}, id="named"),
]


def check_forced_call(message, finish_reason, tool_choice):
    assert finish_reason == "tool_calls" and message.content is None
    (call,) = message.tool_calls
    expected = "get_time" if isinstance(tool_choice, dict) else "get_weather"
    assert call.type == "function" and call.function.name == expected and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[expected])
    return call


@pytest.mark.parametrize("tool_choice", FORCED_CHOICES)
def test_forced_tool_choice(client, ollama, tool_choice):
    completion = client.chat.completions.create(model="llama3.2", messages=ask("What now?"),
                                                tools=[WEATHER, TIME], tool_choice=tool_choice)
    assert_matches("chat_completions.response", completion.model_dump(mode="json", exclude_unset=True))
    check_forced_call(completion.choices[0].message, completion.choices[0].finish_reason, tool_choice)
    assert "tools" not in ollama.last("/api/chat").json


@pytest.mark.parametrize("tool_choice", FORCED_CHOICES)
def test_forced_tool_choice_streamed(client, tool_choice):
    plain = client.chat.completions.create(model="llama3.2", messages=ask("What now?"),
                                           tools=[WEATHER, TIME], tool_choice=tool_choice)
    with client.chat.completions.stream(model="llama3.2", messages=ask("What now?"),
                                        tools=[WEATHER, TIME], tool_choice=tool_choice) as stream:
        for event in stream:
            if event.type == "chunk":
                assert_matches("chat_completions.chunk",
                               event.chunk.model_dump(mode="json", exclude_unset=True))
        final = stream.get_final_completion()
    call = check_forced_call(final.choices[0].message, final.choices[0].finish_reason, tool_choice)
    expected = plain.choices[0].message.tool_calls[0].function
    assert (call.function.name, call.function.arguments) == (expected.name, expected.arguments)


def test_forced_tool_unknown_name_is_bad_request(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=ask(), tools=[WEATHER],
                                       tool_choice={"type": "function", "function": {"name": "x"}})
    assert info.value.param == "tool_choice.function.name"
    assert ollama.requests == []
