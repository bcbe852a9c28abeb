"""Table tests of the pure embeddings translation (OpenAI <-> native /api/embed)."""
import array
import base64
import struct

import pytest

from ollama_gateway import translate
from ollama_gateway.errors import InvalidRequest, UpstreamError

from ..schema_check import assert_matches


def req(**fields):
    return dict({"model": "m", "input": "hello"}, **fields)


# (openai request, native request)
REQUESTS = [
    pytest.param(req(), {"model": "m", "input": ["hello"]}, id="string-becomes-list-of-one"),
    pytest.param(req(input=["a", "b"]), {"model": "m", "input": ["a", "b"]}, id="list"),
    pytest.param(req(dimensions=256), {"model": "m", "input": ["hello"], "dimensions": 256},
                 id="dimensions-forwarded"),
    pytest.param(req(encoding_format="base64", user="u"), {"model": "m", "input": ["hello"]},
                 id="encoding-is-ours-user-ignored"),
]


@pytest.mark.parametrize("openai_req, expected", REQUESTS)
def test_embeddings_request(openai_req, expected):
    assert translate.openai_embeddings_to_ollama(openai_req, "m") == expected


def test_keep_alive_and_alias_target():
    assert translate.openai_embeddings_to_ollama(req(model="ada"), "nomic-embed-text",
                                                 keep_alive=-1) == {
        "model": "nomic-embed-text", "input": ["hello"], "keep_alive": -1}


# (input, param)
REFUSED = [
    pytest.param([1, 2, 3], "input", id="token-ids"),
    pytest.param([[1, 2], [3]], "input", id="token-id-lists"),
    pytest.param("", "input", id="empty-string"),
    pytest.param(["a", ""], "input[1]", id="empty-string-in-list"),
]


@pytest.mark.parametrize("openai_input, param", REFUSED)
def test_refused_inputs(openai_input, param):
    with pytest.raises(InvalidRequest) as info:
        translate.openai_embeddings_to_ollama(req(input=openai_input), "m")
    assert (info.value.param, info.value.status) == (param, 400)
    assert "text" in info.value.message or "empty" in info.value.message


VECTORS = [[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]]


def reply(vectors=VECTORS, **extra):
    return dict({"model": "m", "embeddings": vectors, "prompt_eval_count": 6}, **extra)


def test_float_response():
    out = translate.ollama_embeddings_to_openai(reply(), "ada", 2)
    assert_matches("embeddings.response", out)
    assert out == {"object": "list", "model": "ada",
                   "data": [{"object": "embedding", "index": 0, "embedding": VECTORS[0]},
                            {"object": "embedding", "index": 1, "embedding": VECTORS[1]}],
                   "usage": {"prompt_tokens": 6, "total_tokens": 6}}


@pytest.mark.parametrize("decode", [
    pytest.param(lambda raw: list(struct.unpack("<%df" % (len(raw) // 4), raw)),
                 id="struct-little-endian"),
    # The Python SDK's decoder without numpy: native order, little-endian on every CI host.
    pytest.param(lambda raw: array.array("f", raw).tolist(), id="array-f-as-python-sdk"),
])
def test_base64_is_little_endian_float32(decode):
    out = translate.ollama_embeddings_to_openai(reply(), "ada", 2, encoding_format="base64")
    for item, vector in zip(out["data"], VECTORS):
        raw = base64.b64decode(item["embedding"])
        assert len(raw) == 4 * len(vector)  # float32: not doubles, not a quarter
        assert decode(raw) == vector  # these values are exact in float32


def test_float32_base64_known_bytes():
    packed = base64.b64decode(translate.float32_base64([1.0, -2.0]))
    assert packed == b"\x00\x00\x80\x3f\x00\x00\x00\xc0"


# (native reply, inputs sent)
BROKEN = [
    pytest.param(reply(vectors=VECTORS[:1]), 2, id="fewer-vectors-than-inputs"),
    pytest.param(reply(vectors=VECTORS + VECTORS), 2, id="more-vectors-than-inputs"),
    pytest.param(reply(vectors=[]), 1, id="no-vectors"),
    pytest.param({"model": "m"}, 1, id="no-embeddings-key"),
    pytest.param(reply(vectors=[[0.1], []]), 2, id="an-empty-vector"),
    pytest.param(reply(vectors=[[0.1, "x"]]), 1, id="non-numeric"),
    pytest.param(reply(vectors=[[0.1, 0.2], [0.3]]), 2, id="different-lengths"),
]


@pytest.mark.parametrize("native_reply, count", BROKEN)
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_mismatch_is_upstream_error(native_reply, count, encoding):
    with pytest.raises(UpstreamError) as info:
        translate.ollama_embeddings_to_openai(native_reply, "m", count, encoding_format=encoding)
    assert info.value.status == 502
