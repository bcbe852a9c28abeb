"""/v1/responses end to end: the official openai SDK against the gateway under real
gunicorn (deploy config), with the Ollama emulator behind it."""
import json

import jsonschema
import openai
import pydantic
import pytest

from ..ollama_emulator import chat_line, ndjson_reply
from ..responses_helpers import (SDK_ADDED, assert_event_order, assert_sequence_numbers,
                                 chat_reply, check_event, check_input_items, check_response,
                                 iter_frames, json_args, normalise, reasoning_text, wire)

pytestmark = pytest.mark.integration

WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"], "additionalProperties": False}
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": WEATHER_PARAMS, "strict": True}
TIME_PARAMS = {"type": "object", "properties": {
    "zone": {"type": "string", "enum": ["UTC", "CET"]}, "hour24": {"type": "boolean"}},
    "required": ["zone", "hour24"], "additionalProperties": False}
TIME = {"type": "function", "name": "get_time", "description": "The time in a zone",
        "parameters": TIME_PARAMS, "strict": True}


@pytest.fixture
def client(gunicorn_url, ollama):
    with openai.OpenAI(base_url=gunicorn_url, api_key="unused", max_retries=0,
                       timeout=20) as sdk:
        yield sdk


def chats(ollama):
    return [r.json for r in ollama.requests if r.path == "/api/chat"]


def stream_events(client, **params):
    """Return the JSON of every event of a streamed create, each checked against the schema."""
    with client.responses.create(stream=True, **params) as stream:
        return [check_event(event) for event in stream]


def streamed_final(client, **params):
    with client.responses.stream(**params) as stream:
        events = [wire(e) for e in stream]
        final = stream.get_final_response()
    return events, final


# -- plain text ------------------------------------------------------------------------------

def test_create_text(client, ollama):
    ollama.script("/api/chat", chat_reply([
        chat_line("llama3.2", "Hello"), chat_line("llama3.2", " there"),
        chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=7, eval_count=3)]))
    response = client.responses.create(model="llama3.2", input="Hi")
    check_response(response)
    assert response.output_text == "Hello there"
    assert response.status == "completed"
    assert response.model == "llama3.2"
    assert response.id.startswith("resp_")
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.total_tokens) == (7, 3, 10)
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.status == "completed"
    assert [p.type for p in message.content] == ["output_text"]
    assert chats(ollama)[0]["messages"] == [{"role": "user", "content": "Hi"}]


def test_default_echo_and_ids_unique(client):
    ids = set()
    for _ in range(3):
        response = client.responses.create(model="llama3.2", input="one two")
        assert response.output_text == "Echo: one two"
        ids.add(response.id)
    assert len(ids) == 3


def test_instructions_are_leading_system_message(client, ollama):
    response = client.responses.create(model="llama3.2", instructions="Answer in French.",
                                       input=[{"role": "user", "content": "Hello"}])
    check_response(response)
    assert response.instructions == "Answer in French."
    assert chats(ollama)[0]["messages"] == [{"role": "system", "content": "Answer in French."},
                                            {"role": "user", "content": "Hello"}]


def test_max_output_tokens_incomplete(client, ollama):
    words = " ".join("w%d" % i for i in range(40))
    response = client.responses.create(model="llama3.2", input=words, max_output_tokens=16)
    check_response(response)
    assert chats(ollama)[0]["options"]["num_predict"] == 16
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text and words.startswith(response.output_text[len("Echo: "):].strip())


def test_max_output_tokens_incomplete_streamed(client):
    words = " ".join("w%d" % i for i in range(40))
    events = stream_events(client, model="llama3.2", input=words, max_output_tokens=16)
    assert_event_order(events)
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


# -- streaming ---------------------------------------------------------------------------------

def test_stream_text_events(client, ollama):
    events = stream_events(client, model="llama3.2", input="one two three")
    assert_event_order(events)
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[0]["response"]["status"] == "in_progress"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Echo: one two three"
    done = [e for e in events if e["type"] == "response.output_text.done"]
    assert [e["text"] for e in done] == ["Echo: one two three"]
    final = events[-1]["response"]
    assert final["status"] == "completed" and final["id"].startswith("resp_")
    assert final["output"][0]["content"][0]["text"] == "Echo: one two three"
    assert final["usage"]["output_tokens"] == len(deltas)
    assert chats(ollama)[0].get("stream") is not False


def test_stream_sse_frames_name_their_event(client):
    raw = client.responses.with_streaming_response.create(model="llama3.2", input="Hi",
                                                           stream=True)
    with raw as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        frames = list(iter_frames(response.iter_lines()))
    assert frames, "no SSE frames"
    for event, data in frames:
        assert event == json.loads(data)["type"], (event, data)
    assert_event_order([json.loads(data) for _, data in frames])


def test_first_event_arrives_before_upstream_finishes(client, ollama):
    lines = [chat_line("llama3.2", "first")] + [chat_line("llama3.2", " more")] * 3 + [
        chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=1, eval_count=4)]
    # The emulator paces its lines 0.5 s apart: the reply takes 2 s upstream.
    ollama.script("/api/chat", ndjson_reply(lines, delay=0.5))
    with client.responses.create(model="llama3.2", input="Hi", stream=True) as stream:
        events = iter(stream)
        first_delta = next(e for e in events if e.type == "response.output_text.delta")
        upstream = ollama.last("/api/chat")
        assert first_delta.delta == "first"
        assert not upstream.finished.is_set()  # the emulator is still writing
        rest = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert rest == [" more"] * 3
    assert upstream.finished.wait(5)


def _same_both_ways(client, ollama, lines, **params):
    ollama.script("/api/chat", chat_reply(lines), chat_reply(lines))
    plain = client.responses.create(**params)
    events, final = streamed_final(client, **params)
    assert_event_order(events)
    assert chats(ollama)[1].get("stream") is not False  # streamed upstream too
    check_response(plain)
    assert normalise(final) == normalise(plain)
    assert final.id == events[-1]["response"]["id"]
    return plain, events, final


def test_stream_final_equals_non_streamed_text(client, ollama):
    lines = [chat_line("llama3.2", "Bonjour"), chat_line("llama3.2", " tout"),
             chat_line("llama3.2", " le monde"),
             chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=4, eval_count=3)]
    plain, _, final = _same_both_ways(client, ollama, lines, model="llama3.2", input="Salut")
    assert final.output_text == plain.output_text == "Bonjour tout le monde"
    assert final.usage.total_tokens == 7


def test_stream_final_equals_non_streamed_function_call(client, ollama):
    call = {"id": "call_fixed01", "function": {"index": 0, "name": "get_weather",
                                               "arguments": {"city": "Paris"}}}
    lines = [chat_line("llama3.2", tool_calls=[call]),
             chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=9, eval_count=5)]
    plain, events, final = _same_both_ways(client, ollama, lines, model="llama3.2",
                                           input="Weather in Paris?", tools=[WEATHER])
    [item] = final.output
    assert item.type == "function_call" and item.name == "get_weather"
    assert item.call_id and plain.output[0].call_id
    assert json_args(item) == {"city": "Paris"}
    args_done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [json.loads(e["arguments"]) for e in args_done] == [{"city": "Paris"}]


def test_stream_final_equals_non_streamed_thinking(client, ollama):
    lines = [chat_line("qwen3", thinking="Let me"), chat_line("qwen3", thinking=" think."),
             chat_line("qwen3", "Forty"), chat_line("qwen3", "-two"),
             chat_line("qwen3", done=True, done_reason="stop", prompt_eval_count=5, eval_count=4)]
    plain, events, final = _same_both_ways(client, ollama, lines, model="qwen3",
                                           input="Meaning of life?")
    assert [i.type for i in final.output] == ["reasoning", "message"]
    assert reasoning_text(final.output[0]) == "Let me think."
    assert final.output_text == "Forty-two"
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message"]


def test_default_thinking_model_reasoning_first(client):
    response = client.responses.create(model="qwen3", input="Why?")
    check_response(response)
    assert [i.type for i in response.output] == ["reasoning", "message"]
    assert reasoning_text(response.output[0]) == "The user wrote: Why?"
    assert response.output_text == "Echo: Why?"


def test_stateless_reasoning_round_trip_with_encrypted_content(client, ollama):
    first = client.responses.create(model="qwen3", input="Why?", store=False,
                                    include=["reasoning.encrypted_content"])
    check_response(first)
    reasoning = first.output[0]
    assert reasoning.type == "reasoning"
    assert isinstance(reasoning.encrypted_content, str) and reasoning.encrypted_content
    history = [{"role": "user", "content": "Why?"}] + [
        item.to_dict(mode="json", exclude_none=True) for item in first.output] + [
        {"role": "user", "content": "And then?"}]
    second = client.responses.create(model="qwen3", input=history, store=False,
                                     include=["reasoning.encrypted_content"])
    check_response(second)
    assert second.output_text == "Echo: And then?"
    assistant = chats(ollama)[1]["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"] == "Echo: Why?"
    assert assistant["thinking"] == "The user wrote: Why?"


# -- structured output ------------------------------------------------------------------------

class Person(pydantic.BaseModel):
    name: str
    age: int


def test_parse_text_format(client, ollama):
    response = client.responses.parse(model="llama3.2", input="Invent a person",
                                      text_format=Person)
    check_response(strip_parsed(wire(response)))
    person = response.output_parsed
    assert isinstance(person, Person)
    assert person == Person(name="example", age=42)
    sent = chats(ollama)[0]["format"]
    assert sent["required"] == ["name", "age"]
    assert sent["properties"]["age"]["type"] == "integer"
    assert response.text.format.type == "json_schema" and response.text.format.name == "Person"


def strip_parsed(doc):
    """Return ``doc`` without the SDK's own ``parsed`` fields."""
    if isinstance(doc, dict):
        return {k: strip_parsed(v) for k, v in doc.items() if k not in SDK_ADDED}
    if isinstance(doc, list):
        return [strip_parsed(v) for v in doc]
    return doc


# -- function tools ---------------------------------------------------------------------------

def test_function_tool_round_trip(client, ollama):
    first = client.responses.create(model="llama3.2", input="Weather in Paris?", tools=[WEATHER],
                                    store=False)
    check_response(first)
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id and call.id and call.status == "completed"
    jsonschema.validate(json_args(call), WEATHER_PARAMS)
    [native_tool] = chats(ollama)[0]["tools"]
    assert native_tool["type"] == "function"
    assert (native_tool["function"]["name"], native_tool["function"]["description"],
            native_tool["function"]["parameters"]) == (
        "get_weather", "Current weather for a city", WEATHER_PARAMS)

    history = [{"role": "user", "content": "Weather in Paris?"},
               call.to_dict(mode="json", exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}]
    second = client.responses.create(model="llama3.2", input=history, tools=[WEATHER], store=False)
    check_response(second)
    assert second.status == "completed"
    assert second.output_text == "Echo: Weather in Paris?"
    messages = chats(ollama)[1]["messages"]
    assert messages[0] == {"role": "user", "content": "Weather in Paris?"}
    assert messages[1]["role"] == "assistant"
    assert [c["function"]["name"] for c in messages[1]["tool_calls"]] == ["get_weather"]
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == json_args(call)
    assert messages[2]["role"] == "tool" and messages[2]["tool_name"] == "get_weather"
    assert messages[2]["content"] == "Sunny"
    assert len(messages) == 3


def test_function_tool_round_trip_with_previous_response_id(client, ollama):
    first = client.responses.create(model="llama3.2", input="Weather in Rome?", tools=[WEATHER])
    [call] = first.output
    second = client.responses.create(
        model="llama3.2", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Rain"}])
    check_response(second)
    assert second.previous_response_id == first.id
    assert second.output_text == "Echo: Weather in Rome?"
    messages = chats(ollama)[1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2]["tool_name"] == "get_weather" and messages[2]["content"] == "Rain"


def test_tool_choice_named_function(client, ollama):
    response = client.responses.create(model="llama3.2", input="What time is it?",
                                       tools=[WEATHER, TIME],
                                       tool_choice={"type": "function", "name": "get_time"})
    check_response(response)
    [call] = [i for i in response.output if i.type == "function_call"]
    assert call.name == "get_time"
    jsonschema.validate(json_args(call), TIME_PARAMS)


def test_hosted_web_search_ignored_and_named(client, ollama):
    raw = client.responses.with_raw_response.create(
        model="llama3.2", input="Weather in Oslo?", tools=[{"type": "web_search"}, WEATHER])
    response = raw.parse()
    check_response(response)
    assert "web_search" in raw.headers.get("X-Gateway-Ignored-Params", "")
    assert [t["function"]["name"] for t in chats(ollama)[0]["tools"]] == ["get_weather"]
    assert [i.type for i in response.output] == ["function_call"]
    assert response.output[0].name == "get_weather"


# -- stored responses -----------------------------------------------------------------------------

def test_store_retrieve_and_delete(client, ollama):
    created = client.responses.create(model="llama3.2", input="Remember me")
    assert created.store is not False
    fetched = client.responses.retrieve(created.id)
    check_response(fetched)
    assert wire(fetched) == wire(created)
    assert len(chats(ollama)) == 1  # retrieve does not generate again

    assert client.responses.delete(created.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_is_not_retrievable(client):
    created = client.responses.create(model="llama3.2", input="Forget me", store=False)
    check_response(created)
    assert created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_streamed_response_is_stored(client):
    events = stream_events(client, model="llama3.2", input="Stream and store")
    final = events[-1]["response"]
    fetched = client.responses.retrieve(final["id"])
    assert normalise(wire(fetched)) == normalise(final)
    assert fetched.output_text == "Echo: Stream and store"


INPUTS = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"},
          {"role": "user", "content": "third"}]


def _item_texts(items):
    return [item.content[0].text for item in items]


def test_input_items_list_and_pagination(client):
    created = client.responses.create(model="llama3.2", input=INPUTS)
    page = client.responses.input_items.list(created.id, order="asc")
    assert _item_texts(page.data) == ["first", "second", "third"]
    assert [i.role for i in page.data] == ["user", "assistant", "user"]
    assert all(i.type == "message" and i.id for i in page.data)
    assert page.has_more is False
    assert _item_texts(client.responses.input_items.list(created.id).data) == [
        "third", "second", "first"]  # the documented default order is desc

    one = client.responses.input_items.list(created.id, limit=1, order="asc")
    assert _item_texts(one.data) == ["first"] and one.has_more is True
    two = client.responses.input_items.list(created.id, limit=1, order="asc",
                                            after=one.data[0].id)
    assert _item_texts(two.data) == ["second"] and two.has_more is True
    rest = client.responses.input_items.list(created.id, limit=5, order="asc",
                                             after=two.data[0].id)
    assert _item_texts(rest.data) == ["third"] and rest.has_more is False
    raw = client.responses.input_items.with_raw_response.list(created.id, limit=2, order="asc")
    body = check_input_items(raw.http_response.json())
    assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][1]["id"]
    assert body["has_more"] is True
    # the SDK's auto-pagination follows `after` to the end
    assert _item_texts(list(client.responses.input_items.list(created.id, limit=1, order="asc"))) \
        == ["first", "second", "third"]


def test_input_items_of_unknown_response(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list("resp_doesnotexist")


def test_previous_response_id_continues(client, ollama):
    first = client.responses.create(model="llama3.2", input="My name is Ann",
                                    instructions="Be terse.")
    second = client.responses.create(model="llama3.2", input="What is my name?",
                                     previous_response_id=first.id)
    check_response(second)
    assert second.previous_response_id == first.id
    assert second.output_text == "Echo: What is my name?"
    # instructions are not carried over from the previous response
    assert chats(ollama)[1]["messages"] == [
        {"role": "user", "content": "My name is Ann"},
        {"role": "assistant", "content": "Echo: My name is Ann"},
        {"role": "user", "content": "What is my name?"}]
    third = client.responses.create(model="llama3.2", input="And again?",
                                    previous_response_id=second.id)
    assert [m["content"] for m in chats(ollama)[2]["messages"]] == [
        "My name is Ann", "Echo: My name is Ann", "What is my name?", "Echo: What is my name?",
        "And again?"]
    assert third.output_text == "Echo: And again?"


def test_unknown_previous_response_id(client, ollama):
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="llama3.2", input="Hello",
                                previous_response_id="resp_doesnotexist")
    assert info.value.code == "previous_response_not_found"
    assert info.value.param == "previous_response_id"
    assert ollama.requests == []


def test_cancel_is_bad_request(client):
    created = client.responses.create(model="llama3.2", input="Hi")
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(created.id)


# -- failures ---------------------------------------------------------------------------------

def test_mid_stream_error_ends_with_response_failed(client, ollama):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel"),
                                             chat_line("llama3.2", "lo"),
                                             {"error": "runner crashed"}]))
    events = stream_events(client, model="llama3.2", input="Hi")
    assert_sequence_numbers(events)
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.failed", types
    assert "response.completed" not in types
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Hello"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert "runner crashed" in failed["error"]["message"]
    assert failed["error"]["code"]
    assert failed["id"] == events[0]["response"]["id"]


def test_mid_stream_error_with_stream_helper(client, ollama):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel"),
                                             {"error": "runner crashed"}]))
    with client.responses.stream(model="llama3.2", input="Hi") as stream:
        types = [e.type for e in stream]
        assert types[-1] == "response.failed"
        with pytest.raises(RuntimeError):
            stream.get_final_response()


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="no-such-model", input="Hi")
    assert info.value.code == "model_not_found"


def test_unknown_model_streaming_fails_before_any_event(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="no-such-model", input="Hi", stream=True)
    assert "no-such-model" in info.value.message


def test_invalid_request_is_bad_request_and_not_sent(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="llama3.2", input="Hi", temperature=5)
    assert info.value.param == "temperature"
    assert ollama.requests == []
