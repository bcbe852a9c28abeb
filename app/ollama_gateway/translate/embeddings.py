"""Pure translation between OpenAI ``/v1/embeddings`` and native ``/api/embed``.

The official SDKs ask for ``encoding_format: "base64"`` unless told otherwise
and decode each string as little-endian float32 (numpy's ``frombuffer`` or
``array("f")`` in Python, a ``Float32Array`` in Node). A server that answers
with float lists anyway, or packs doubles, gives vectors of the wrong length
without any error, so the encoding is explicit here: ``struct`` with ``<f``.
"""
import base64
import struct
from typing import Any, Dict, List

from ..errors import InvalidRequest, UpstreamError
from .common import ignored_params, unsupported

# Accepted, not forwarded, listed in X-Gateway-Ignored-Params.
EMBEDDINGS_IGNORED = frozenset(("user",))


def embedding_inputs(raw: Any) -> List[str]:
    """Return the texts to embed from a validated ``input``."""
    texts = [raw] if isinstance(raw, str) else list(raw)
    if not all(isinstance(text, str) for text in texts):
        # LangChain's OpenAIEmbeddings sends token ids unless told
        # check_embedding_ctx_length=False; Ollama only embeds text.
        raise unsupported("Token-id input is not supported: Ollama embeds text. Send a string "
                          "or a list of strings.", "input")
    for i, text in enumerate(texts):
        if not text:
            raise InvalidRequest("Invalid 'input': empty strings cannot be embedded.",
                                 param="input" if isinstance(raw, str) else "input[%d]" % i,
                                 code="invalid_value")
    return texts


def openai_embeddings_to_ollama(openai_req: Dict[str, Any], model: str,
                                keep_alive: Any = None) -> Dict[str, Any]:
    """Return the native ``/api/embed`` body for a validated OpenAI embeddings request.

    All inputs go in one call, as a list, so the reply can be matched to
    them one by one.

    :param model: the Ollama model name (after any alias mapping).
    """
    native = {"model": model,
              "input": embedding_inputs(openai_req["input"])}  # type: Dict[str, Any]
    if "dimensions" in openai_req:
        # Only when given: some servers reject an explicit null or default.
        native["dimensions"] = openai_req["dimensions"]
    if keep_alive is not None:
        native["keep_alive"] = keep_alive
    return native


def embeddings_ignored_params(openai_req: Dict[str, Any]) -> List[str]:
    """Return the known request fields that were accepted but not forwarded."""
    return ignored_params(openai_req, EMBEDDINGS_IGNORED)


def float32_base64(vector: List[float]) -> str:
    """Return ``vector`` as base64 of little-endian IEEE-754 float32 values."""
    return base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode("ascii")


def _checked_vectors(native: Dict[str, Any], count: int) -> List[List[float]]:
    vectors = native.get("embeddings")
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else "no"
        raise UpstreamError("Ollama returned %s embeddings for %d inputs." % (got, count))
    size = None  # type: Optional[int]
    for i, vector in enumerate(vectors):
        if not isinstance(vector, list) or not vector:
            raise UpstreamError("Ollama returned an empty embedding for input %d." % i)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vector):
            raise UpstreamError("Ollama returned a non-numeric embedding for input %d." % i)
        if size is not None and len(vector) != size:
            raise UpstreamError("Ollama returned embeddings of different lengths (%d and %d)."
                                % (size, len(vector)))
        size = len(vector)
    return vectors


def ollama_embeddings_to_openai(native: Dict[str, Any], model: str, count: int,
                                encoding_format: str = "float") -> Dict[str, Any]:
    """Return an OpenAI embeddings list for a native ``/api/embed`` reply.

    :param model: the name the client asked for (echoed back).
    :param count: how many inputs were sent; any other number of vectors, or
        an empty vector, is Ollama's failure (502), never a short list.
    :raises UpstreamError: for a reply that does not match the inputs.
    """
    vectors = _checked_vectors(native, count)
    encode = float32_base64 if encoding_format == "base64" else list
    tokens = native.get("prompt_eval_count") or 0
    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(vector)}
                     for i, vector in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
