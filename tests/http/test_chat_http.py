"""/v1/chat/completions over HTTP: the gateway served by werkzeug's threaded
server on loopback, the Ollama emulator behind it, plain `requests` in front."""
import json
import socket

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import (chat_line, drop_reply, error_reply, json_reply, ndjson_reply,
                               raw_reply, stall_reply)
from ..schema_check import assert_matches
from .shapes import assert_error
from ..servers import InProcessServer
from ..sse import read_events

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}


def post(url, body=None, raw=None, headers=None, **kw):
    data = raw if raw is not None else json.dumps(body)
    return requests.post(url + "/chat/completions", data=data,
                         headers=dict({"Content-Type": "application/json"}, **(headers or {})),
                         timeout=30, **kw)


@pytest.mark.parametrize("raw, code", [
    pytest.param(b"", "invalid_json", id="empty"),
    pytest.param(b"{not json", "invalid_json", id="invalid-json"),
    pytest.param(b"[1, 2]", "invalid_json", id="array"),
    pytest.param(b"\"text\"", "invalid_json", id="string"),
])
def test_unparsable_bodies(gateway_url, ollama, raw, code):
    assert_error(post(gateway_url, raw=raw), 400, code=code)
    assert ollama.requests == []


@pytest.mark.parametrize("body, param, code", [
    pytest.param({"messages": CHAT["messages"]}, "model", "missing_required_parameter", id="no-model"),
    pytest.param(dict(CHAT, messages=[]), "messages", "invalid_value", id="empty-messages"),
    pytest.param(dict(CHAT, messages=[{"role": "wizard", "content": "x"}]), "messages[0].role",
                 "invalid_value", id="bad-role"),
    pytest.param(dict(CHAT, temperature="0.7"), "temperature", "invalid_type", id="temp-type"),
    pytest.param(dict(CHAT, n=2, stream=True), "n", "unsupported_value", id="n-streaming"),
    pytest.param(dict(CHAT, logit_bias={"1": 5}), "logit_bias", "unsupported_parameter",
                 id="logit_bias"),
])
def test_invalid_requests_never_reach_ollama(gateway_url, ollama, body, param, code):
    err = assert_error(post(gateway_url, body), 400, param=param, code=code)
    assert err["type"] == "invalid_request_error"
    assert ollama.requests == []


def test_big_bad_image_gives_short_error(gateway_url, ollama):
    body = dict(CHAT, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/png;base64," + "A" * 2000000}]}])
    resp = post(gateway_url, body)
    assert_error(resp, 400, param="messages[0].content[0].image_url")
    assert len(resp.content) < 1000


def test_body_too_large(emulator, ollama):
    server = InProcessServer(create_app(ollama_url=emulator.url, max_body_bytes=1000,
                                        startup_check=False))
    try:
        resp = post(server.url + "/v1", dict(CHAT, messages=[{"role": "user", "content": "x" * 2000}]))
        assert_error(resp, 413, code="request_too_large")
    finally:
        server.stop()
    assert ollama.requests == []


def test_nulls_are_not_given_and_unknown_fields_accepted(gateway_url, ollama):
    body = dict(CHAT, temperature=None, max_tokens=None, stop=None, n=None, top_logprobs=None,
                tool_choice=None, stream_options=None, frequency_penalty=None,
                some_future_field={"x": 1}, keep_alive="1h",
                messages=[{"role": "user", "content": "Hi", "id": "msg-1", "opts": {}}])
    resp = post(gateway_url, body)
    assert resp.status_code == 200, resp.text
    sent = ollama.last("/api/chat").json
    assert set(sent) == {"model", "messages", "stream", "options"}
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["options"] == {"num_ctx": 8192}


def test_ignored_params_header(gateway_url):
    resp = post(gateway_url, dict(CHAT, user="u", store=False, metadata={"a": "b"}))
    assert resp.headers["X-Gateway-Ignored-Params"] == "metadata, store, user"
    assert "X-Gateway-Ignored-Params" not in post(gateway_url, CHAT).headers


def test_request_id_echoed_or_generated(gateway_url):
    assert post(gateway_url, CHAT, headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    generated = post(gateway_url, CHAT, headers={"X-Request-Id": "bad id\twith spaces"})
    assert generated.headers["X-Request-Id"].startswith("req_")
    assert post(gateway_url, {}).headers["X-Request-Id"].startswith("req_")


def test_stream_headers_and_frames(gateway_url):
    resp = post(gateway_url, dict(CHAT, stream=True), stream=True)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache, no-transform"
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in resp.headers and "Content-Encoding" not in resp.headers
    events = read_events(resp)
    assert events[-1] == "[DONE]"
    for event in events[:-1]:
        assert_matches("chat_completions.chunk", json.loads(event))


def test_upstream_unreachable_names_url():
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        dead = "http://127.0.0.1:%d" % sock.getsockname()[1]
    server = InProcessServer(create_app(ollama_url=dead))
    try:
        for body in (CHAT, dict(CHAT, stream=True)):
            err = assert_error(post(server.url + "/v1", body), 502, code="upstream_unreachable")
            assert dead in err["message"]
    finally:
        server.stop()


@pytest.fixture
def impatient_url(emulator):
    """The gateway with a 0.5 s upstream read timeout."""
    server = InProcessServer(create_app(ollama_url=emulator.url, read_timeout=0.5))
    yield server.url + "/v1"
    server.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_timeout_before_headers_is_504(impatient_url, ollama, stream):
    ollama.script("/api/chat", stall_reply(3))
    resp = post(impatient_url, dict(CHAT, stream=stream))
    assert_error(resp, 504, code="upstream_timeout")
    assert resp.headers["x-should-retry"] == "false"


def test_upstream_stall_mid_stream_is_error_event(impatient_url, ollama):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel")], then="stall"))
    events = read_events(post(impatient_url, dict(CHAT, stream=True), stream=True))
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_timeout"
    assert "[DONE]" not in events


@pytest.mark.parametrize("reply, code", [
    pytest.param(ndjson_reply([chat_line("llama3.2", "Hel")], then="drop"), "upstream_error",
                 id="dropped"),
    pytest.param(ndjson_reply([chat_line("llama3.2", "Hel")]), "upstream_error", id="no-done-line"),
    pytest.param(ndjson_reply([chat_line("llama3.2", "Hel"), {"error": "out of memory"}]),
                 "upstream_error", id="error-line"),
])
def test_mid_stream_failures_become_error_events(gateway_url, ollama, reply, code):
    ollama.script("/api/chat", reply)
    events = read_events(post(gateway_url, dict(CHAT, stream=True), stream=True))
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    error = json.loads(events[-1])
    assert_matches("error", error)
    assert error["error"]["code"] == code and "[DONE]" not in events


@pytest.mark.parametrize("reply, status, code", [
    pytest.param(error_reply(404, "model 'x' not found"), 404, "model_not_found", id="404"),
    pytest.param(error_reply(400, "invalid model name"), 400, None, id="400"),
    pytest.param(error_reply(503, "server busy, please try again."), 503, "upstream_busy",
                 id="503"),
    pytest.param(error_reply(500, "option \"stop\" must be of type array"), 502,
                 "upstream_error", id="500"),
    pytest.param(raw_reply(502, b"<html>Bad Gateway</html>", "text/html"), 502,
                 "upstream_error", id="html-502"),
    pytest.param(drop_reply(), 502, "upstream_unreachable", id="dropped-before-headers"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_before_stream(gateway_url, ollama, reply, status, code, stream):
    ollama.script("/api/chat", reply)
    err = assert_error(post(gateway_url, dict(CHAT, stream=stream)), status,
                       param="model" if status == 404 else None, code=code)
    assert "<html>" not in err["message"]


def test_busy_upstream_carries_retry_after(gateway_url, ollama):
    ollama.script("/api/chat", error_reply(503, "server busy"))
    assert post(gateway_url, CHAT).headers["retry-after"] == "1"


def test_finished_streams_reuse_the_upstream_connection(gateway_url, ollama):
    for _ in range(3):
        events = read_events(post(gateway_url, dict(CHAT, stream=True), stream=True))
        assert events[-1] == "[DONE]"
    assert len({r.peer for r in ollama.requests}) == 1


# -- forced tool choices: constrained output instead of native tools ----------------

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]}}}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def forced_body(**fields):
    return dict(dict(CHAT, messages=[{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Weather in Paris?"}],
                     tools=[WEATHER, TIME]), **fields)


def stream_chunks(resp):
    events = read_events(resp)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for chunk in chunks:
        assert_matches("chat_completions.chunk", chunk)
    return chunks


def test_forced_named_tool_sends_format_not_tools(gateway_url, ollama):
    resp = post(gateway_url, forced_body(tool_choice=NAMED))
    assert resp.status_code == 200, resp.text
    sent = ollama.last("/api/chat").json
    assert "tools" not in sent
    assert sent["format"] == WEATHER["function"]["parameters"]
    assert [m["role"] for m in sent["messages"]] == ["system", "system", "user"]
    assert sent["messages"][0]["content"] == "Be brief."
    assert "get_weather" in sent["messages"][1]["content"]
    body = resp.json()
    assert_matches("chat_completions.response", body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"example"}'}


def test_forced_required_several_tools_answers_the_tagged_call(gateway_url, ollama):
    resp = post(gateway_url, forced_body(tool_choice="required"))
    assert resp.status_code == 200, resp.text
    sent = ollama.last("/api/chat").json
    assert "tools" not in sent
    assert [b["properties"]["name"] for b in sent["format"]["anyOf"]] == [
        {"enum": ["get_weather"]}, {"enum": ["get_time"]}]
    (call,) = resp.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"example"}'}


def test_forced_allowed_tools_required_picks_from_the_subset(gateway_url, ollama):
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_time"}}]}}
    resp = post(gateway_url, forced_body(tool_choice=choice))
    assert resp.status_code == 200, resp.text
    assert ollama.last("/api/chat").json["format"] == TIME["function"]["parameters"]
    (call,) = resp.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_time", "arguments": '{"zone":"UTC"}'}


def test_allowed_tools_auto_narrows_native_tools(gateway_url, ollama):
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "function", "function": {"name": "get_time"}}]}}
    resp = post(gateway_url, forced_body(tool_choice=choice))
    assert resp.status_code == 200, resp.text
    sent = ollama.last("/api/chat").json
    assert sent["tools"] == [TIME] and "format" not in sent


@pytest.mark.parametrize("tool_choice", [
    pytest.param(NAMED, id="one-function"),
    pytest.param("required", id="several-functions"),
])
def test_forced_stream_frames_add_up_to_the_plain_call(gateway_url, ollama, tool_choice):
    plain = post(gateway_url, forced_body(tool_choice=tool_choice)).json()
    chunks = stream_chunks(post(gateway_url, forced_body(tool_choice=tool_choice, stream=True),
                                stream=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "tool_calls"}
    parts = [part for c in chunks for part in c["choices"][0]["delta"].get("tool_calls") or ()]
    head = parts[0]
    assert (head["index"], head["type"], head["function"]["name"]) == (0, "function", "get_weather")
    if tool_choice == NAMED:
        # The head opens the call, then every content line is one arguments delta.
        assert head["function"]["arguments"] == "" and len(parts) == 3
        assert all(set(p) == {"index", "function"} for p in parts[1:])
    else:
        assert len(parts) == 1  # the name is only known at the end: one complete delta
    (expected,) = plain["choices"][0]["message"]["tool_calls"]
    assert head["id"].startswith("call_")
    assert "".join(p["function"]["arguments"] for p in parts) == expected["function"]["arguments"]


def test_forced_truncated_reply_is_length(gateway_url, ollama):
    body = post(gateway_url, forced_body(tool_choice=NAMED, max_tokens=1)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":'


def test_forced_n_choices_each_forced(gateway_url, ollama):
    body = post(gateway_url, forced_body(tool_choice=NAMED, n=2)).json()
    assert [c["message"]["tool_calls"][0]["function"]["name"] for c in body["choices"]] == [
        "get_weather", "get_weather"]
    assert len(ollama.requests) == 2 and all("format" in r.json for r in ollama.requests)


@pytest.mark.parametrize("body, param, code", [
    pytest.param(forced_body(tool_choice={"type": "function", "function": {"name": "nope"}}),
                 "tool_choice.function.name", "invalid_value", id="unknown-name"),
    pytest.param(dict(CHAT, tool_choice="required"), "tool_choice", "invalid_value",
                 id="required-without-tools"),
    pytest.param(forced_body(tool_choice="required", response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
        "response_format", "unsupported_value", id="json_schema-clash"),
    pytest.param(forced_body(tool_choice=NAMED, tools=[{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "required": "city"}}}]),
        "tools[0].function.parameters", "invalid_value", id="parameters-not-a-schema"),
])
def test_forced_refused_before_ollama(gateway_url, ollama, body, param, code):
    assert_error(post(gateway_url, body), 400, param=param, code=code)
    assert ollama.requests == []


def test_forced_prose_reply_is_502_or_error_event(gateway_url, ollama):
    prose = chat_line("llama3.2", "It is sunny.")
    final = chat_line("llama3.2", done=True, done_reason="stop", eval_count=3)
    ollama.script("/api/chat", json_reply(dict(final, message=prose["message"])),
                  ndjson_reply([prose, final]))
    err = assert_error(post(gateway_url, forced_body(tool_choice=NAMED)), 502, code="upstream_error")
    assert err["message"] == "Ollama's reply does not match the forced tool's schema."
    events = read_events(post(gateway_url, forced_body(tool_choice=NAMED, stream=True),
                              stream=True))
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "upstream_error"
