"""Pure translation between OpenAI's legacy ``/v1/completions`` and native ``/api/generate``.

Differences from Ollama's own layer (reference section 3), on purpose:
``prompt`` may be a list of exactly one string; unset sampling fields stay
unset (no forced ``temperature``/``top_p`` of 1, no zero penalties);
``logprobs`` come back in the legacy shape instead of being dropped; ``echo``,
``n``, ``best_of`` and ``logit_bias`` are honoured or refused, never ignored;
streamed chunks carry ``"usage": null`` rather than zeros.
"""
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InvalidRequest
from .common import (SYSTEM_FINGERPRINT, check_stream_options, ignored_params, ollama_created,
                     ollama_usage_to_openai, sampling_options, unsupported)

# Accepted, not forwarded, listed in X-Gateway-Ignored-Params.
COMPLETION_IGNORED = frozenset(("user",))


def _prompt(prompt: Any) -> str:
    """Return the one prompt string of ``prompt`` (a string or a list of one string)."""
    if isinstance(prompt, str):
        return prompt
    if not prompt:
        raise InvalidRequest("Invalid 'prompt': empty array. Send the prompt as a string.",
                             param="prompt", code="invalid_value")
    if not all(isinstance(item, str) for item in prompt):
        raise unsupported("Token-id prompts are not supported: Ollama takes text. Send the "
                          "prompt as a string.", "prompt")
    if len(prompt) > 1:
        raise unsupported("Only one prompt per request is supported (got %d); send one "
                          "request per prompt." % len(prompt), "prompt")
    return prompt[0]


def _check_unsupported(openai_req: Dict[str, Any]) -> None:
    if openai_req.get("logit_bias"):
        raise unsupported("logit_bias is not supported by Ollama.", "logit_bias",
                          code="unsupported_parameter")
    n = openai_req.get("n", 1)
    if n > 1 and openai_req.get("stream"):
        raise unsupported("n > 1 is only supported without streaming.", "n")
    if openai_req.get("best_of", n) != n:
        # best_of ranks candidates by their total log probability on the
        # server; best_of == n is the only value that needs no ranking.
        raise unsupported("best_of is not supported by Ollama; leave it unset or equal to n.",
                          "best_of", code="unsupported_parameter")
    check_stream_options(openai_req)
    if openai_req.get("echo") and "logprobs" in openai_req:
        raise unsupported("echo with logprobs needs the log probabilities of the prompt's "
                          "tokens, which Ollama does not return.", "echo")


def openai_completion_to_ollama(openai_req: Dict[str, Any], model: str,
                                num_ctx: Optional[int] = None,
                                keep_alive: Any = None) -> Dict[str, Any]:
    """Return the native ``/api/generate`` body for a validated OpenAI completion request.

    :param model: the Ollama model name (after any alias mapping).
    :raises InvalidRequest: for what the schema allows but Ollama cannot honour.
    """
    _check_unsupported(openai_req)
    native = {"model": model, "prompt": _prompt(openai_req["prompt"]),
              "stream": bool(openai_req.get("stream")),
              "options": sampling_options(openai_req, num_ctx)}  # type: Dict[str, Any]
    if openai_req.get("suffix"):
        # Fill-in-the-middle: Ollama's template puts the suffix after the
        # prompt; models without the insert capability answer 400.
        native["suffix"] = openai_req["suffix"]
    if "logprobs" in openai_req:
        # logprobs: k asks for the sampled token plus the k most likely ones;
        # 0 still returns the sampled token's log probability.
        native["logprobs"] = True
        if openai_req["logprobs"]:
            native["top_logprobs"] = openai_req["logprobs"]
    if keep_alive is not None:
        native["keep_alive"] = keep_alive
    return native


def completion_ignored_params(openai_req: Dict[str, Any]) -> List[str]:
    """Return the known request fields that were accepted but not forwarded."""
    return ignored_params(openai_req, COMPLETION_IGNORED)


def completion_echo(openai_req: Dict[str, Any]) -> str:
    """Return the text to put before the completion: the prompt if ``echo``, else ``""``."""
    return _prompt(openai_req["prompt"]) if openai_req.get("echo") else ""


def ollama_logprobs_to_legacy(entries: Optional[List[Dict[str, Any]]], top: int,
                              offset: int = 0) -> Tuple[Dict[str, Any], int]:
    """Return the legacy ``logprobs`` object for native entries, and the next text offset.

    ``top_logprobs[i]`` maps up to ``top`` alternatives to their log
    probabilities and always holds the sampled token (OpenAI: "up to
    logprobs+1 elements"). ``text_offset`` counts characters of ``text``.
    """
    tokens, token_logprobs, tops, offsets = [], [], [], []  # type: Tuple[List[Any], ...]
    for entry in entries or ():
        token, logprob = entry.get("token", ""), entry.get("logprob", 0.0)
        alternatives = {}  # type: Dict[str, float]
        for alt in (entry.get("top_logprobs") or [])[:top]:
            alternatives.setdefault(alt.get("token", ""), alt.get("logprob", 0.0))
        alternatives.setdefault(token, logprob)
        tokens.append(token)
        token_logprobs.append(logprob)
        tops.append(alternatives)
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops,
            "text_offset": offsets}, offset


def completion_finish_reason(done_reason: Optional[str]) -> str:
    """Return the OpenAI ``finish_reason`` for a native ``done_reason``."""
    # "load"/"unload" (an empty prompt) and a missing reason are a normal end.
    return "length" if done_reason == "length" else "stop"


def ollama_completion_to_openai(native: Dict[str, Any], completion_id: str, created: int,
                                model: str, echo: str = "",
                                logprobs: Optional[int] = None) -> Dict[str, Any]:
    """Return an OpenAI ``text_completion`` for a native non-streamed generate reply.

    :param model: the name the client asked for (echoed back).
    :param echo: text put before the generated text (the prompt, for ``echo``).
    :param logprobs: the request's ``logprobs``; ``None`` means not asked for.
    """
    text = native.get("response") or ""
    legacy = None
    if logprobs is not None:
        legacy = ollama_logprobs_to_legacy(native.get("logprobs"), logprobs, len(echo))[0]
    choice = {"text": echo + text, "index": 0, "logprobs": legacy,
              "finish_reason": completion_finish_reason(native.get("done_reason"))}
    return {"id": completion_id, "object": "text_completion",
            "created": ollama_created(native, created),
            "model": model, "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [choice],
            "usage": ollama_usage_to_openai(native)}


class CompletionStream:
    """Turns native ``/api/generate`` NDJSON objects into ``text_completion`` chunks.

    Unlike chat there is no separate finish chunk: as with OpenAI, the last
    text chunk carries ``finish_reason``. With ``include_usage`` every other
    chunk has ``"usage": null`` and a final chunk with ``"choices": []``
    carries the totals.
    """

    def __init__(self, completion_id: str, created: int, model: str,
                 include_usage: bool = False, echo: str = "",
                 logprobs: Optional[int] = None) -> None:
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.done = False
        self._echo = echo
        self._offset = 0
        self._stamped = False
        self._base = {"id": completion_id, "object": "text_completion", "created": created,
                      "model": model, "system_fingerprint": SYSTEM_FINGERPRINT}

    def _chunk(self, text: str, finish: Optional[str] = None,
               entries: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        legacy = None
        if self.logprobs is not None and entries:
            legacy = ollama_logprobs_to_legacy(entries, self.logprobs, self._offset)[0]
        self._offset += len(text)
        chunk = dict(self._base, choices=[{"text": text, "index": 0, "logprobs": legacy,
                                           "finish_reason": finish}])
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def feed(self, native: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Return the OpenAI chunks for one native stream object."""
        chunks = []
        if not self._stamped:
            self._stamped = True
            self._base["created"] = ollama_created(native, self._base["created"])
        if self._echo:
            chunks.append(self._chunk(self._echo))
            self._echo = ""
        text = native.get("response") or ""
        entries = native.get("logprobs")
        if native.get("done"):
            self.done = True
            chunks.append(self._chunk(text, completion_finish_reason(native.get("done_reason")),
                                      entries))
            if self.include_usage:
                chunks.append(dict(self._base, choices=[], usage=ollama_usage_to_openai(native)))
        elif text or entries:
            # Lines with only thinking text (a thinking model) carry nothing here.
            chunks.append(self._chunk(text, entries=entries))
        return chunks
