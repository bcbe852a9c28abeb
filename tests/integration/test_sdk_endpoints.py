"""/v1/models, /v1/embeddings, /v1/completions, aliases, the allow-list and several hosts
end to end: the official openai SDK against the gateway under real gunicorn (deploy config),
with the Ollama emulators behind it."""
import base64
import json

import numpy
import openai
import pytest

from ..http.shapes import assert_completion_chunk
from ..schema_check import assert_matches
from ..servers import Gunicorn

pytestmark = pytest.mark.integration

HF = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"


def sdk(base_url):
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=20)


@pytest.fixture
def client(gunicorn_url, ollama):
    with sdk(gunicorn_url) as c:
        yield c


def dump(obj):
    return obj.model_dump(mode="json", exclude_unset=True)


# -- models --------------------------------------------------------------------

def test_models_list(client, ollama):
    models = list(client.models.list())
    assert [m.id for m in models] == [m["model"] for m in ollama.models]
    for model in models:
        assert_matches("models.model", dump(model))
    assert {m.owned_by for m in models} == {"library", "bartowski"}


@pytest.mark.parametrize("model_id", ["llama3.2:latest", "qwen2.5-coder:1.5b", HF])
def test_models_retrieve(client, ollama, model_id):
    model = client.models.retrieve(model_id)
    assert_matches("models.model", dump(model))
    assert (model.id, model.object) == (model_id, "model")
    assert ollama.last("/api/show").json == {"model": model_id}


def test_models_retrieve_unknown(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("someone/missing:7b")
    assert info.value.code == "model_not_found"


# -- embeddings ----------------------------------------------------------------

def test_embeddings_sdk_default_is_base64_decoded_to_full_length(client, ollama):
    raw = client.embeddings.with_raw_response.create(model="nomic-embed-text",
                                                     input=["first", "second"])
    wire = raw.http_response.json()
    result = raw.parse()
    # The SDK asked for base64 and got it; decoded, each vector has the
    # model's full dimension (a float answer would decode to a quarter of it).
    assert all(isinstance(d["embedding"], str) for d in wire["data"])
    assert [len(d.embedding) for d in result.data] == [768, 768]
    assert [d.index for d in result.data] == [0, 1]
    expected = numpy.frombuffer(base64.b64decode(wire["data"][1]["embedding"]), "<f4").tolist()
    assert result.data[1].embedding == expected
    assert_matches("embeddings.response", dump(result))
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0
    assert ollama.last("/api/embed").json["input"] == ["first", "second"]


def test_embeddings_float_equals_base64(client):
    floats = client.embeddings.create(model="nomic-embed-text", input="same text",
                                      encoding_format="float")
    assert_matches("embeddings.response", dump(floats))
    decoded = client.embeddings.create(model="nomic-embed-text", input="same text")
    assert len(floats.data[0].embedding) == 768
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6,
                                                      abs=1e-7)


def test_embeddings_dimensions(client, ollama):
    result = client.embeddings.create(model="nomic-embed-text", input="x", dimensions=128)
    assert len(result.data[0].embedding) == 128
    assert ollama.last("/api/embed").json["dimensions"] == 128


def test_embeddings_token_input_is_bad_request(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="nomic-embed-text", input=[[101, 2023, 102]])
    assert info.value.param == "input"
    assert ollama.requests == []


# -- completions ---------------------------------------------------------------

def test_completion(client, ollama):
    completion = client.completions.create(model="llama3.2", prompt="Say hi", max_tokens=20,
                                           temperature=0.1)
    assert_matches("completions.response", dump(completion))
    assert completion.choices[0].text == "Echo: Say hi"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "llama3.2" and completion.id.startswith("cmpl-")
    assert ollama.last("/api/generate").json["options"] == {"temperature": 0.1,
                                                            "num_predict": 20, "num_ctx": 8192}


def test_completion_suffix_fim(client, ollama):
    completion = client.completions.create(model="qwen2.5-coder:1.5b", prompt="def f(x):",
                                           suffix="    return y")
    assert completion.choices[0].text
    sent = ollama.last("/api/generate").json
    assert (sent["prompt"], sent["suffix"]) == ("def f(x):", "    return y")


def test_completion_logprobs(client):
    completion = client.completions.create(model="llama3.2", prompt="a b", logprobs=2)
    logprobs = completion.choices[0].logprobs
    assert "".join(logprobs.tokens) == completion.choices[0].text
    assert len(logprobs.token_logprobs) == len(logprobs.text_offset) == len(logprobs.tokens)


def test_completion_streaming(client):
    chunks = list(client.completions.create(model="llama3.2", prompt="one two three",
                                            stream=True))
    for chunk in chunks[:-1]:
        assert_completion_chunk(chunk.model_dump(mode="json"))
    assert_completion_chunk(chunks[-1].model_dump(mode="json"), final=True)
    assert "".join(c.choices[0].text for c in chunks) == "Echo: one two three"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_completion_streaming_include_usage(client):
    chunks = list(client.completions.create(model="llama3.2", prompt="a b c d", max_tokens=2,
                                            stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "length"


def test_completion_errors(client, ollama):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="llama3.2", prompt="x", best_of=3)
    assert info.value.param == "best_of"
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="llama3.2", prompt=[1, 2, 3])
    assert info.value.param == "prompt"
    assert ollama.requests == []
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x", stream=True)


# -- aliases, allow-list, a second host: another gunicorn, configured by env and a file --

ALIASES = {"gpt-4o": "llama3.2", "gpt-3.5-turbo-instruct": "qwen2.5-coder:1.5b",
           "text-embedding-3-small": "bge-m3"}


@pytest.fixture(scope="module")
def routed_url(emulator, emulator2, tmp_path_factory):
    """The gateway under gunicorn with aliases (from a file), an allow-list and two hosts."""
    where = tmp_path_factory.mktemp("routed")
    (where / "aliases.json").write_text(json.dumps(ALIASES))
    server = Gunicorn(where / "gunicorn.log", env={
        "OLLAMA_HOST": emulator.url, "OLLAMA_GATEWAY_READ_TIMEOUT": "5", "WEB_CONCURRENCY": "1",
        "OLLAMA_GATEWAY_MODEL_ALIASES_FILE": str(where / "aliases.json"),
        "OLLAMA_GATEWAY_ALLOWED_MODELS": "qwen3, nomic-embed-text",
        "OLLAMA_GATEWAY_UPSTREAMS": json.dumps({"qwen3": emulator2.url, "bge-m3": emulator2.url})})
    yield server.url + "/v1"
    server.stop()


@pytest.fixture
def routed(routed_url, ollama, ollama2):
    with sdk(routed_url) as c:
        yield c


def test_routed_models_list(routed):
    assert [m.id for m in routed.models.list()] == [
        "nomic-embed-text:latest", "qwen3:latest", "gpt-4o", "gpt-3.5-turbo-instruct",
        "text-embedding-3-small"]
    assert routed.models.retrieve("gpt-4o").id == "gpt-4o"


def test_alias_chat_echoes_client_name(routed, ollama):
    completion = routed.chat.completions.create(model="gpt-4o", messages=[
        {"role": "user", "content": "Hi"}])
    assert completion.model == "gpt-4o"
    assert ollama.last("/api/chat").json["model"] == "llama3.2"
    chunks = list(routed.chat.completions.create(model="gpt-4o", stream=True, messages=[
        {"role": "user", "content": "Hi"}]))
    assert {c.model for c in chunks} == {"gpt-4o"}


def test_alias_completion(routed, ollama):
    completion = routed.completions.create(model="gpt-3.5-turbo-instruct", prompt="x",
                                           suffix="y")
    assert completion.model == "gpt-3.5-turbo-instruct"
    assert ollama.last("/api/generate").json["model"] == "qwen2.5-coder:1.5b"


def test_alias_embeddings_on_second_host(routed, ollama, ollama2):
    result = routed.embeddings.create(model="text-embedding-3-small", input="x")
    assert result.model == "text-embedding-3-small"
    assert len(result.data[0].embedding) == 1024  # bge-m3's dimension, decoded from base64
    assert ollama2.last("/api/embed").json["model"] == "bge-m3"
    assert ollama.requests == []


def test_allowed_model_on_second_host(routed, ollama, ollama2):
    routed.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "Hi"}])
    assert [r.path for r in ollama2.requests] == ["/api/chat"] and ollama.requests == []


@pytest.mark.parametrize("call", [
    pytest.param(lambda c: c.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Hi"}]), id="chat"),
    pytest.param(lambda c: c.completions.create(model="llava", prompt="x"), id="completions"),
    pytest.param(lambda c: c.embeddings.create(model="bge-m3", input="x"), id="embeddings"),
    pytest.param(lambda c: c.models.retrieve(HF), id="retrieve"),
])
def test_outside_allow_list_is_not_found_without_upstream_call(routed, ollama, ollama2, call):
    with pytest.raises(openai.NotFoundError) as info:
        call(routed)
    assert info.value.code == "model_not_found"
    assert ollama.requests == [] and ollama2.requests == []
