"""The usage log: one JSON line on ``ollama_gateway.usage`` per API request, however it ends.

The gateway is served in-process (werkzeug's threaded server) in front of the
Ollama emulator; lines are read with ``caplog``. A stream writes its line when
its generator closes, on the server's thread, so the tests wait for the line
itself (a handler notifies), never for a while.
"""
import json
import logging
import re
import threading

import pytest
import requests

from ollama_gateway import create_app

from ..ollama_emulator import chat_line, error_reply, ndjson_reply
from ..sse import iter_events, iter_lines

USAGE = "ollama_gateway.usage"
SECRET_PROMPT = "the-secret-prompt-text"
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": SECRET_PROMPT}]}
KEY = "sk-test-usage-key"
FIELDS = {"time": str, "request_id": str, "key": str, "endpoint": str, "model": (str, type(None)),
          "ollama_model": (str, type(None)), "upstream": (str, type(None)), "status": int,
          "stream": bool, "prompt_tokens": int, "completion_tokens": int,
          "time_to_first_token": (float, type(None)), "duration": float,
          "error_code": (str, type(None))}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Lines(logging.Handler):
    """Notifies waiters as usage lines arrive (caplog keeps them)."""

    def __init__(self, caplog):
        super().__init__(logging.INFO)
        self.caplog = caplog
        self.changed = threading.Condition()
        self.records = []

    def emit(self, record):
        # Its own list: the root handler caplog reads gets the record only after
        # this one, on the server's thread, so caplog.records may lag behind.
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def wait(self, count=1, timeout=5.0):
        """Return the usage lines, decoded, once ``count`` of them were written."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.records) >= count, timeout), \
                len(self.records)
            return [json.loads(r.getMessage()) for r in self.records]


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger=USAGE)
    handler = Lines(caplog)
    logger = logging.getLogger(USAGE)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def url(emulator, serve_module):
    app = create_app(ollama_url=emulator.url, read_timeout=5, store="off", sse_keepalive=0.05,
                     startup_check=False, metrics="off")
    return serve_module(app) + "/v1"


@pytest.fixture(scope="module")
def keyed_url(emulator, serve_module):
    app = create_app(ollama_url=emulator.url, read_timeout=5, store="off", api_keys=[KEY],
                     startup_check=False, metrics="off")
    return serve_module(app) + "/v1"


def post(url, path, body, **kw):
    return requests.post(url + path, json=body, timeout=10, **kw)


def only_line(lines, caplog):
    found = lines.wait(1)
    assert len(found) == 1, found
    line = found[0]
    assert set(line) == set(FIELDS)
    for name, kind in FIELDS.items():
        assert isinstance(line[name], kind), (name, line[name])
    assert RFC3339_UTC.match(line["time"])
    assert line["duration"] >= 0
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == USAGE)
    assert SECRET_PROMPT not in text and KEY not in text
    return line


def sse_data(resp):
    with resp:
        return [json.loads(e) for e in iter_events(iter_lines(resp.iter_content(chunk_size=None)))
                if e != "[DONE]"]


def test_chat_success(url, ollama, lines, caplog):
    resp = post(url, "/chat/completions", CHAT, headers={"X-Request-Id": "req-usage-1"})
    assert resp.status_code == 200
    usage = resp.json()["usage"]
    line = only_line(lines, caplog)
    assert line["request_id"] == "req-usage-1" == resp.headers["X-Request-Id"]
    assert line["key"] == "anonymous"
    assert line["endpoint"] == "chat_completions"
    assert (line["model"], line["ollama_model"]) == ("llama3.2", "llama3.2")
    assert line["upstream"] == ollama.url
    assert (line["status"], line["stream"], line["error_code"]) == (200, False, None)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert usage["completion_tokens"] > 0
    assert 0 <= line["time_to_first_token"] <= line["duration"]


def test_chat_n_sums_the_choices(url, ollama, lines, caplog):
    resp = post(url, "/chat/completions", dict(CHAT, n=2))
    usage = resp.json()["usage"]
    line = only_line(lines, caplog)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])


def test_chat_stream_counts_match_the_usage_chunk(url, ollama, lines, caplog):
    resp = post(url, "/chat/completions", dict(CHAT, stream=True,
                                               stream_options={"include_usage": True}),
                stream=True)
    usage = sse_data(resp)[-1]["usage"]
    line = only_line(lines, caplog)
    assert (line["status"], line["stream"], line["error_code"]) == (200, True, None)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])
    assert 0 <= line["time_to_first_token"] <= line["duration"]


def test_completions(url, ollama, lines, caplog):
    body = {"model": "llama3.2", "prompt": SECRET_PROMPT}
    usage = post(url, "/completions", body).json()["usage"]
    line = only_line(lines, caplog)
    assert line["endpoint"] == "completions"
    assert (line["prompt_tokens"], line["completion_tokens"]) == (
        usage["prompt_tokens"], usage["completion_tokens"])


def test_embeddings(url, ollama, lines, caplog):
    usage = post(url, "/embeddings", {"model": "nomic-embed-text", "input": SECRET_PROMPT}).json()["usage"]
    line = only_line(lines, caplog)
    assert line["endpoint"] == "embeddings"
    assert usage["prompt_tokens"] > 0
    assert (line["prompt_tokens"], line["completion_tokens"]) == (usage["prompt_tokens"], 0)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_responses_counts_match_usage(url, ollama, lines, caplog, stream):
    body = {"model": "llama3.2", "input": SECRET_PROMPT, "store": False, "stream": stream}
    resp = post(url, "/responses", body, stream=stream)
    if stream:
        with resp:
            events = [json.loads(l[len("data: "):]) for l in
                      iter_lines(resp.iter_content(chunk_size=None)) if l.startswith("data: ")]
        usage = events[-1]["response"]["usage"]
    else:
        usage = resp.json()["usage"]
    line = only_line(lines, caplog)
    assert (line["endpoint"], line["stream"], line["error_code"]) == (
        "create_response", stream, None)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (
        usage["input_tokens"], usage["output_tokens"])
    assert usage["output_tokens"] > 0


def test_invalid_request_before_upstream(url, ollama, lines, caplog):
    resp = post(url, "/chat/completions", dict(CHAT, temperature="hot"))
    assert resp.status_code == 400
    line = only_line(lines, caplog)
    assert (line["status"], line["error_code"]) == (400, resp.json()["error"]["code"])
    assert line["model"] is None and line["upstream"] is None
    assert (line["prompt_tokens"], line["time_to_first_token"]) == (0, None)
    assert ollama.requests == []


def test_unknown_model_404_names_the_model(url, ollama, lines, caplog):
    ollama.script("/api/chat", error_reply(404, "model 'nope' not found"))
    resp = post(url, "/chat/completions", dict(CHAT, model="nope"))
    assert resp.status_code == 404
    line = only_line(lines, caplog)
    assert (line["status"], line["error_code"], line["model"]) == (404, "model_not_found", "nope")


def test_upstream_unreachable(emulator, serve, dead_url, lines, caplog):
    app = create_app(ollama_url=dead_url, store="off", startup_check=False, metrics="off")
    resp = post(serve(app) + "/v1", "/chat/completions", CHAT)
    assert resp.status_code == 502
    line = only_line(lines, caplog)
    assert (line["status"], line["error_code"], line["upstream"]) == (
        502, "upstream_unreachable", dead_url)


def test_error_mid_stream(url, ollama, lines, caplog):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel"),
                                             {"error": "out of memory"}]))
    events = sse_data(post(url, "/chat/completions", dict(CHAT, stream=True), stream=True))
    assert events[-1]["error"]["code"] == "upstream_error"
    line = only_line(lines, caplog)
    assert (line["status"], line["stream"], line["error_code"]) == (200, True, "upstream_error")
    assert line["time_to_first_token"] is not None


def test_client_gone_mid_stream(url, ollama, lines, caplog):
    ollama.script("/api/chat", ndjson_reply([chat_line("llama3.2", "Hel")], then="stall"))
    resp = post(url, "/chat/completions", dict(CHAT, stream=True), stream=True)
    first = next(iter_events(iter_lines(resp.iter_content(chunk_size=None))))
    assert json.loads(first)["choices"][0]["delta"]["content"] == "Hel"
    resp.close()
    # the next keep-alive write fails and the server closes the generator
    line = only_line(lines, caplog)
    assert (line["status"], line["stream"], line["error_code"]) == (
        200, True, "client_disconnected")
    assert line["completion_tokens"] == 0


def test_key_is_logged_by_its_hash_only(keyed_url, ollama, lines, caplog):
    resp = post(keyed_url, "/chat/completions", CHAT, headers={"Authorization": "Bearer " + KEY})
    assert resp.status_code == 200
    line = only_line(lines, caplog)
    assert re.match(r"^key-[0-9a-f]{8}$", line["key"])


def test_wrong_key(keyed_url, ollama, lines, caplog):
    resp = post(keyed_url, "/chat/completions", CHAT, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    line = only_line(lines, caplog)
    assert (line["key"], line["status"], line["error_code"]) == (
        "unauthenticated", 401, "invalid_api_key")


def test_health_probes_are_not_logged(url, ollama, lines, caplog):
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    post(url, "/chat/completions", CHAT)
    assert [line["endpoint"] for line in lines.wait(1)] == ["chat_completions"]
