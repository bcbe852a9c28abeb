"""SSE keep-alive comments while Ollama is silent: during a cold model load
(before Ollama sends headers) and between streamed lines."""
import json

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import Reply, chat_line, error_reply, ndjson_reply
from ..servers import InProcessServer
from ..sse import iter_events, iter_lines

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
LINES = [chat_line("llama3.2", "Hel"), chat_line("llama3.2", "lo"),
         chat_line("llama3.2", done=True, done_reason="stop", prompt_eval_count=3, eval_count=2)]


@pytest.fixture
def url(emulator):
    """The gateway with a 0.2 s keep-alive interval and a 0.3 s header wait."""
    server = InProcessServer(create_app(ollama_url=emulator.url, sse_keepalive=0.2,
                                        stream_header_wait=0.3, read_timeout=5))
    yield server.url + "/v1"
    server.stop()


def open_stream(url):
    resp = requests.post(url + "/chat/completions", json=CHAT, stream=True, timeout=10)
    assert resp.status_code == 200
    return resp


def test_keepalive_between_lines(url, ollama):
    ollama.script("/api/chat", ndjson_reply(LINES, delay=0.7))
    with open_stream(url) as resp:
        lines = list(iter_lines(resp.iter_content(chunk_size=None)))
    assert ": keep-alive" in lines[lines.index("") + 1:]  # after the first event
    events = list(iter_events(lines))
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                   for e in events[:-1] if json.loads(e)["choices"]) == "Hello"
    assert events[-1] == "[DONE]"


def test_cold_load_commits_headers_and_sends_keepalives(url, ollama):
    ollama.script("/api/chat", ndjson_reply(LINES, headers_delay=1.5))
    with open_stream(url) as resp:
        lines = iter_lines(resp.iter_content(chunk_size=None))
        assert next(lines) == ": keep-alive"  # before Ollama sent anything at all
        assert not ollama.last("/api/chat").finished.is_set()
        events = list(iter_events(lines))
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    assert events[-1] == "[DONE]"


def test_failure_after_header_wait_is_an_error_event(url, ollama):
    late_404 = error_reply(404, "model 'llama3.2' not found")

    def send(handler, rec):
        if handler.wait(1.0, rec):
            late_404.send(handler, rec)
    ollama.script("/api/chat", Reply("late 404", send))
    with open_stream(url) as resp:
        events = list(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
    assert json.loads(events[-1])["error"]["code"] == "model_not_found"


def test_gone_client_closes_upstream_while_ollama_is_silent(url, ollama):
    ollama.script("/api/chat", ndjson_reply(LINES[:1], then="stall"))
    resp = open_stream(url)
    first = next(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
    assert json.loads(first)["choices"][0]["delta"]["content"] == "Hel"
    resp.close()
    # the next keep-alive write fails, the gateway closes its upstream request
    assert ollama.last("/api/chat").disconnected.wait(3)


# -- the same for the Responses API ------------------------------------------------

def open_responses_stream(url):
    resp = requests.post(url + "/responses", stream=True, timeout=10, json={
        "model": "llama3.2", "input": "Hi", "stream": True, "store": False})
    assert resp.status_code == 200
    return resp


def response_events(lines):
    return [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]


def test_responses_cold_load_keepalives_then_events(url, ollama):
    ollama.script("/api/chat", ndjson_reply(LINES, headers_delay=1.5))
    with open_responses_stream(url) as resp:
        lines = iter_lines(resp.iter_content(chunk_size=None))
        assert next(lines) == ": keep-alive"
        assert not ollama.last("/api/chat").finished.is_set()
        events = response_events(lines)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Hello"


def test_responses_gone_client_closes_upstream(url, ollama):
    ollama.script("/api/chat", ndjson_reply(LINES[:1], then="stall"))
    resp = open_responses_stream(url)
    lines = iter_lines(resp.iter_content(chunk_size=None))
    first = next(e for e in map(lambda l: response_events([l]), lines) if e)
    assert first[0]["type"] == "response.created"
    resp.close()
    assert ollama.last("/api/chat").disconnected.wait(3)


def test_responses_failure_after_header_wait_is_response_failed(url, ollama):
    late_404 = error_reply(404, "model 'llama3.2' not found")

    def send(handler, rec):
        if handler.wait(1.0, rec):
            late_404.send(handler, rec)
    ollama.script("/api/chat", Reply("late 404", send))
    with open_responses_stream(url) as resp:
        events = response_events(iter_lines(resp.iter_content(chunk_size=None)))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.failed"]
    assert "not found" in events[-1]["response"]["error"]["message"]
