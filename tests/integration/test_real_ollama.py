"""The end-to-end checks against a real Ollama, opt-in.

Set OLLAMA_GATEWAY_TEST_OLLAMA_HOST to its URL and OLLAMA_GATEWAY_TEST_MODEL to
an installed chat model (default llama3.2); without the URL the module is
skipped, because Ollama cannot run on the CI machines.
"""
import json
import os

import openai
import pytest

from ..schema_check import assert_matches
from ..servers import Gunicorn

HOST = os.environ.get("OLLAMA_GATEWAY_TEST_OLLAMA_HOST", "")
MODEL = os.environ.get("OLLAMA_GATEWAY_TEST_MODEL", "llama3.2")

pytestmark = [
    pytest.mark.integration, pytest.mark.real_ollama,
    pytest.mark.skipif(not HOST, reason="set OLLAMA_GATEWAY_TEST_OLLAMA_HOST to run against a real Ollama"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    logs = tmp_path_factory.mktemp("real")
    server = Gunicorn(logs / "gunicorn.log", env={
        "OLLAMA_HOST": HOST, "OLLAMA_GATEWAY_STORE": "sqlite:///%s" % (logs / "store.db")})
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                       timeout=600) as sdk:
        yield sdk
    server.stop()


def ask():
    return [{"role": "user", "content": "Reply with the single word: pong"}]


def test_plain(client):
    completion = client.chat.completions.create(model=MODEL, messages=ask(), max_tokens=20)
    assert_matches("chat_completions.response", completion.model_dump(mode="json", exclude_unset=True))
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 0


def test_stream_with_usage(client):
    chunks = list(client.chat.completions.create(model=MODEL, messages=ask(), max_tokens=20,
                                                 stream=True, stream_options={"include_usage": True}))
    for chunk in chunks:
        assert_matches("chat_completions.chunk", chunk.model_dump(mode="json", exclude_unset=True))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] in ("stop", "length")


def test_json_mode(client):
    completion = client.chat.completions.create(
        model=MODEL, response_format={"type": "json_object"}, max_tokens=60,
        messages=[{"role": "user", "content": "Give a JSON object with a key 'a' set to 1."}])
    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_unknown_model(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model-xyz", messages=ask())


def test_responses_stream_matches_the_stored_response(client):
    with client.responses.stream(model=MODEL, input="Reply with the single word: pong",
                                 max_output_tokens=20) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_response()
    assert events[0] == "response.created" and events[-1] in ("response.completed",
                                                             "response.incomplete")
    assert final.output_text and final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_responses_forced_tool_choice(client):
    tool = {"type": "function", "name": "set_colour", "strict": False, "parameters": {
        "type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
        "required": ["colour"]}}
    response = client.responses.create(model=MODEL, input="Pick a colour.", tools=[tool],
                                       tool_choice={"type": "function", "name": "set_colour"},
                                       store=False)
    (call,) = [item for item in response.output if item.type == "function_call"]
    assert json.loads(call.arguments)["colour"] in ("red", "blue")
