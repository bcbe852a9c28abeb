"""Self-tests of the Ollama emulator, over real loopback HTTP with plain ``requests``."""
import json
import math
import threading
import time

import pytest
import requests

from .. import ollama_emulator as oe

USER = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "required": ["city", "unit"],
                               "properties": {"city": {"type": "string"},
                                              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                              "days": {"type": "integer"}}}}}


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def post(http, ollama, path, body, **kwargs):
    kwargs.setdefault("timeout", (2, 5))
    return http.post(ollama.url + path, json=body, **kwargs)


def ndjson(response):
    return [json.loads(line) for line in response.iter_lines() if line]


def test_root_version_and_head(ollama, http):
    root = http.get(ollama.url + "/", timeout=2)
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["Content-Type"].startswith("text/plain")
    head = http.head(ollama.url + "/", timeout=2)
    assert (head.status_code, head.content) == (200, b"")
    assert http.get(ollama.url + "/api/version", timeout=2).json() == {"version": "0.33.0"}


def test_chat_non_stream_echoes_last_user_message(ollama, http):
    response = post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER, "stream": False})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    body = response.json()
    assert body["model"] == "llama3.2"
    assert body["message"] == {"role": "assistant", "content": "Echo: Hello there"}
    assert (body["done"], body["done_reason"], body["eval_count"]) == (True, "stop", 3)
    assert body["prompt_eval_count"] > 0 and body["created_at"].endswith("Z")
    recorded = ollama.last("/api/chat")
    assert recorded.method == "POST" and recorded.json["messages"] == USER
    assert recorded.headers["content-type"] == "application/json" and recorded.finished.wait(2)


def test_chat_streams_by_default(ollama, http):
    with post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER}, stream=True) as response:
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert response.headers["Transfer-Encoding"] == "chunked"
        lines = ndjson(response)
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert "".join(line["message"]["content"] for line in lines) == "Echo: Hello there"
    assert "eval_count" not in lines[0] and lines[-1]["eval_count"] == 3
    assert lines[-1]["done_reason"] == "stop" and lines[-1]["total_duration"] > 0


def test_stream_lines_arrive_one_by_one(ollama, http):
    ollama.script("/api/chat", oe.ndjson_reply([oe.chat_line("m", "a"), oe.chat_line("m", "b"),
                                             oe.chat_line("m", done=True, done_reason="stop")], delay=0.3))
    with post(http, ollama, "/api/chat", {"model": "m"}, stream=True) as response:
        recorded = ollama.last("/api/chat")
        lines = response.iter_lines()
        assert json.loads(next(lines))["message"]["content"] == "a"
        assert not recorded.finished.is_set()  # the emulator is still holding back line two
        assert [json.loads(line)["done"] for line in lines] == [False, True]
    assert recorded.finished.wait(2) and not recorded.disconnected.is_set()


def test_scripts_are_consumed_fifo_then_defaults_resume(ollama, http):
    ollama.script("/api/chat", oe.json_reply({"first": 1}), oe.error_reply(503, "server busy"))
    body = {"model": "llama3.2", "messages": USER, "stream": False}
    assert post(http, ollama, "/api/chat", body).json() == {"first": 1}
    assert post(http, ollama, "/api/chat", body).status_code == 503
    assert post(http, ollama, "/api/chat", body).json()["message"]["content"] == "Echo: Hello there"
    assert [r.path for r in ollama.requests] == ["/api/chat"] * 3


def test_error_reply_shape(ollama, http):
    ollama.script("/api/tags", oe.error_reply(500, "boom"))
    response = http.get(ollama.url + "/api/tags", timeout=2)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == b'{"error":"boom"}'


def test_raw_reply(ollama, http):
    ollama.script("/api/chat", oe.raw_reply(502, b"<html>Bad Gateway</html>", "text/html"))
    response = post(http, ollama, "/api/chat", {})
    assert (response.status_code, response.headers["Content-Type"], response.text) == \
        (502, "text/html", "<html>Bad Gateway</html>")


def test_error_line_mid_stream(ollama, http):
    ollama.script("/api/chat", oe.ndjson_reply([oe.chat_line("m", "Hi"), {"error": "runner crashed"}]))
    with post(http, ollama, "/api/chat", {"model": "m"}, stream=True) as response:
        assert response.status_code == 200
        lines = ndjson(response)
    assert lines[-1] == {"error": "runner crashed"} and not any(line.get("done") for line in lines)


def test_drop_mid_stream_breaks_the_chunked_body(ollama, http):
    ollama.script("/api/chat", oe.ndjson_reply([oe.chat_line("m", "Hi")], then="drop"))
    with post(http, ollama, "/api/chat", {"model": "m"}, stream=True) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["message"]["content"] == "Hi"
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(lines)


def test_drop_reply_gives_no_response(ollama, http):
    ollama.script("/api/chat", oe.drop_reply())
    with pytest.raises(requests.exceptions.ConnectionError):
        post(http, ollama, "/api/chat", {"model": "m"})
    assert ollama.last("/api/chat").json == {"model": "m"}


def test_stall_reply_provokes_read_timeout_and_sees_the_client_leave(ollama, http):
    ollama.script("/api/chat", oe.stall_reply(10))
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(http, ollama, "/api/chat", {"model": "m"}, timeout=(2, 0.2))
    recorded = ollama.last("/api/chat")
    assert recorded.disconnected.wait(2) and ollama.closed.is_set()
    assert recorded.finished.wait(2)  # the stall ended with the client, not after 10 s


@pytest.mark.parametrize("reply", [
    oe.ndjson_reply([oe.chat_line("m", "Hi")], then="stall"),
    oe.ndjson_reply([oe.chat_line("m", "Hi"), oe.chat_line("m", "!")], delay=30),
    oe.ndjson_reply([oe.chat_line("m", "Hi")], first_delay=30),
], ids=["stall", "delay", "first-delay"])
def test_client_closing_a_stream_is_detected(ollama, http, reply):
    ollama.script("/api/chat", reply)
    with post(http, ollama, "/api/chat", {"model": "m"}, stream=True) as response:
        assert response.status_code == 200
    recorded = ollama.last("/api/chat")
    assert recorded.disconnected.wait(2) and recorded.disconnected_at >= recorded.received_at


def test_keep_alive_survives_a_streamed_reply(ollama, http):
    with post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER}, stream=True) as response:
        ndjson(response)
    assert http.get(ollama.url + "/api/tags", timeout=2).status_code == 200
    assert post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER, "stream": False}).ok
    assert len({r.peer for r in ollama.requests}) == 1


def test_unknown_path_and_wrong_method(ollama, http):
    missing = http.get(ollama.url + "/api/nope", timeout=2)
    assert (missing.status_code, missing.text, missing.headers["Content-Type"]) == \
        (404, "404 page not found", "text/plain")
    wrong = http.get(ollama.url + "/api/chat", timeout=2)
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def test_tags_and_show(ollama, http):
    models = http.get(ollama.url + "/api/tags", timeout=2).json()["models"]
    names = [m["name"] for m in models]
    assert {"llama3.2:latest", "llava:latest", "qwen3:latest", "nomic-embed-text:latest"} <= set(names)
    assert any(name.startswith("hf.co/") for name in names)
    assert set(models[0]["details"]) >= {"parent_model", "format", "family", "families", "parameter_size",
                                         "quantization_level"}
    show = post(http, ollama, "/api/show", {"model": "LLAMA3.2"}).json()
    assert "tools" in show["capabilities"] and show["model_info"]["llama.context_length"] == 131072
    legacy = post(http, ollama, "/api/show", {"name": "nomic-embed-text"}).json()
    assert legacy["model_info"]["nomic-bert.embedding_length"] == 768
    missing = post(http, ollama, "/api/show", {"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope:latest' not found"})
    ollama.models = [m for m in ollama.models if m["name"] == "llava:latest"]
    assert [m["name"] for m in http.get(ollama.url + "/api/tags", timeout=2).json()["models"]] == ["llava:latest"]


def test_embed(ollama, http):
    body = post(http, ollama, "/api/embed", {"model": "nomic-embed-text", "input": ["a b", "c"]}).json()
    first, second = body["embeddings"]
    assert len(first) == len(second) == 768 and first != second
    assert math.isclose(math.fsum(v * v for v in first), 1.0) and body["prompt_eval_count"] == 3
    again = post(http, ollama, "/api/embed", {"model": "nomic-embed-text", "input": "a b"}).json()
    assert again["embeddings"] == [first]
    short = post(http, ollama, "/api/embed", {"model": "nomic-embed-text", "input": "a b", "dimensions": 64}).json()
    assert len(short["embeddings"][0]) == 64 and math.isclose(math.fsum(v * v for v in short["embeddings"][0]), 1)
    empty = post(http, ollama, "/api/embed", {"model": "nomic-embed-text", "input": ""}).json()
    assert empty == {"model": "nomic-embed-text", "embeddings": []}


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/chat", {"model": "", "messages": USER}, 400, "model is required"),
    ("/api/chat", {"model": "nope", "messages": USER}, 404, "model 'nope' not found"),
    ("/api/chat", {"model": "llama3.2", "messages": USER, "tools": [WEATHER_TOOL], "stream": False}, 200, None),
    ("/api/chat", {"model": "llava", "messages": USER, "tools": [WEATHER_TOOL]}, 400,
     "registry.ollama.ai/library/llava:latest does not support tools"),
    ("/api/chat", {"model": "llama3.2", "messages": [dict(USER[0], images=["AAAA"])]}, 400,
     "this model is missing data required for image input"),
    ("/api/chat", {"model": "llama3.2", "messages": USER, "think": True}, 400,
     '"llama3.2" does not support thinking'),
    ("/api/chat", {"model": "nomic-embed-text", "messages": USER}, 400, '"nomic-embed-text" does not support chat'),
    ("/api/chat", {"model": "llama3.2", "messages": USER, "top_logprobs": 21}, 400,
     "top_logprobs must be between 0 and 20"),
    ("/api/chat", {"model": "llama3.2", "messages": USER, "format": "xml"}, 500,
     'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object'),
    ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "model 'nope' not found"),
    ("/api/generate", {"model": "llama3.2", "prompt": "x", "suffix": "y"}, 400,
     "registry.ollama.ai/library/llama3.2:latest does not support insert"),
    ("/api/embed", {"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
    ("/api/embed", {"model": "nomic-embed-text", "input": [1, 2]}, 400, "invalid input type"),
    ("/api/embed", {"model": "llama3.2", "input": "x"}, 501, "this model does not support embeddings"),
    ("/api/show", {}, 400, "model is required"),
])
def test_native_errors(ollama, http, path, body, status, message):
    response = post(http, ollama, path, body)
    assert response.status_code == status
    if message is not None:
        assert response.json() == {"error": message}
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_missing_body(ollama, http):
    response = http.post(ollama.url + "/api/chat", data=b"", timeout=2)
    assert (response.status_code, response.json()) == (400, {"error": "missing request body"})


def test_chat_tool_call(ollama, http):
    body = {"model": "llama3.2", "messages": USER, "tools": [WEATHER_TOOL]}
    with post(http, ollama, "/api/chat", body, stream=True) as response:
        lines = ndjson(response)
    assert len(lines) == 2 and lines[0]["message"]["content"] == "" and lines[1]["done"]
    (call,) = lines[0]["message"]["tool_calls"]
    assert call["id"].startswith("call_") and len(call["id"]) == 13
    assert call["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "example",
                                                                                "unit": "celsius"}}


def test_chat_thinking_format_length_and_logprobs(ollama, http):
    think = post(http, ollama, "/api/chat", {"model": "qwen3", "messages": USER, "stream": False}).json()
    assert think["message"]["thinking"] and think["message"]["content"] == "Echo: Hello there"
    plain = post(http, ollama, "/api/chat", {"model": "qwen3", "messages": USER, "think": False, "stream": False})
    assert "thinking" not in plain.json()["message"]
    schema = {"type": "object", "required": ["name", "age", "tags"], "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}}
    shaped = post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER, "format": schema,
                                           "stream": False}).json()
    assert json.loads(shaped["message"]["content"]) == {"name": "example", "age": 42, "tags": ["example"]}
    cut = post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER, "options": {"num_predict": 2},
                                        "stream": False}).json()
    assert (cut["message"]["content"], cut["done_reason"], cut["eval_count"]) == ("Echo: Hello ", "length", 2)
    with post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": USER, "logprobs": True,
                                       "top_logprobs": 2}, stream=True) as response:
        lines = ndjson(response)
    (entry,) = lines[0]["logprobs"]
    assert entry["token"] == "Echo: " and entry["bytes"] == list(b"Echo: ") and len(entry["top_logprobs"]) == 2
    load = post(http, ollama, "/api/chat", {"model": "llama3.2", "messages": []}).json()
    assert (load["done"], load["done_reason"]) == (True, "load")


def test_generate(ollama, http):
    body = post(http, ollama, "/api/generate", {"model": "llama3.2", "prompt": "Why sky", "stream": False}).json()
    assert (body["response"], body["done_reason"], body["context"]) == ("Echo: Why sky", "stop", [1, 2, 3])
    with post(http, ollama, "/api/generate", {"model": "qwen2.5-coder:1.5b", "prompt": "def f(", "suffix": "):"},
              stream=True) as response:
        lines = ndjson(response)
    assert "".join(line["response"] for line in lines) == "Echo: def f(" and lines[-1]["context"] == [1, 2, 3]
    load = post(http, ollama, "/api/generate", {"model": "llama3.2"}).json()
    assert (load["response"], load["done_reason"]) == ("", "load")


def test_line_helpers():
    line = oe.chat_line("m", done=True, done_reason="stop", prompt_eval_count=5, eval_count=2)
    assert line["message"] == {"role": "assistant", "content": ""} and line["eval_count"] == 2
    assert {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"} <= set(line)
    assert set(oe.chat_line("m", "x")) == {"model", "created_at", "message", "done"}
    final = oe.generate_line("m", done=True, done_reason="length", context=[7])
    assert (final["response"], final["context"], final["done_reason"]) == ("", [7], "length")
    stamp = oe.now_rfc3339()
    assert stamp[10] == "T" and stamp.endswith("Z") and len(stamp.split(".")[-1]) <= 10


def test_stop_is_prompt_during_a_stall():
    emulator = oe.OllamaEmulator().start()
    emulator.script("/api/chat", oe.stall_reply(30))
    errors = []

    def call():
        try:
            requests.post(emulator.url + "/api/chat", json={}, timeout=(2, 30))
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    client = threading.Thread(target=call)
    client.start()
    recorded = emulator.wait_for("/api/chat")
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 1.0
    client.join(5)
    assert not client.is_alive() and isinstance(errors[0], requests.exceptions.ConnectionError)
    assert recorded.finished.is_set() and not recorded.disconnected.is_set()


def test_stop_is_prompt_with_an_open_stream_and_an_idle_connection():
    emulator = oe.OllamaEmulator().start()
    emulator.script("/api/chat", oe.ndjson_reply([oe.chat_line("m", "Hi")], then="stall"))
    with requests.Session() as http:
        assert http.get(emulator.url + "/api/tags", timeout=2).ok  # leaves an idle pooled connection
        with requests.Session() as other, other.post(emulator.url + "/api/chat", json={}, stream=True,
                                                     timeout=(2, 30)) as response:
            lines = response.iter_lines()
            next(lines)
            started = time.monotonic()
            emulator.stop()
            assert time.monotonic() - started < 1.0
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                list(lines)
