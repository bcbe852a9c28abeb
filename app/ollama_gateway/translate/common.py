"""What every translation shares: the fingerprint, usage, sampling options, refusals."""
import re
from typing import Any, Dict, List, Optional

from ..errors import InvalidRequest
from .models import ollama_time_to_unix

SYSTEM_FINGERPRINT = "fp_ollama"

# Sampling fields copied 1:1 into options; absent stays absent so that the
# model's Modelfile defaults apply (Ollama's layer forces 1.0 instead).
SAMPLING = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


#: OpenAI's rule for function names; Ollama's templates assume it too.
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}\Z")


def clip(text: Any, limit: int = 200) -> str:
    """Return ``text`` (a client's value, for a message) cut to ``limit`` characters and "…"."""
    text = text if isinstance(text, str) else str(text)
    return text if len(text) <= limit else text[:limit] + "\u2026"


def check_function_name(name: str, param: str) -> None:
    """Refuse a function name outside OpenAI's pattern (1 to 64 of ``a-zA-Z0-9_-``)."""
    if not _FUNCTION_NAME.match(name):
        raise InvalidRequest("Invalid '%s': '%s'. Function names must be 1 to 64 characters "
                             "of a-z, A-Z, 0-9, underscores and dashes." % (param, clip(name)),
                             param=param, code="invalid_value")


def unsupported(message: str, param: str, code: str = "unsupported_value") -> InvalidRequest:
    """Return the 400 for a value the schema allows but Ollama cannot honour."""
    return InvalidRequest(message, param=param, code=code)


def ollama_usage_to_openai(native: Dict[str, Any]) -> Dict[str, int]:
    """Return OpenAI ``usage`` from a native final object's token counts."""
    prompt = native.get("prompt_eval_count") or 0
    completion = native.get("eval_count") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def ollama_created(native: Dict[str, Any], fallback: int) -> int:
    """Return the Unix time of a native reply's ``created_at``, else ``fallback``.

    Responses carry when Ollama made them, not when the gateway saw them.
    """
    return ollama_time_to_unix(native.get("created_at")) or fallback


def sampling_options(openai_req: Dict[str, Any], num_ctx: Optional[int]) -> Dict[str, Any]:
    """Return native ``options`` for the sampling fields shared by chat and completions."""
    options = {name: openai_req[name] for name in SAMPLING if name in openai_req}
    if "seed" in openai_req:
        options["seed"] = int(openai_req["seed"])
    if "stop" in openai_req:
        stop = openai_req["stop"]
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    limits = [openai_req[k] for k in ("max_tokens", "max_completion_tokens") if k in openai_req]
    if limits:
        # Ollama's layer ignores max_completion_tokens (ollama#7125); both map
        # here, and the tighter one wins when a client sends both.
        options["num_predict"] = int(min(limits))
    if num_ctx:
        options["num_ctx"] = num_ctx
    return options


def check_stream_options(openai_req: Dict[str, Any]) -> None:
    """Refuse ``stream_options`` without ``stream``, as OpenAI does."""
    if "stream_options" in openai_req and not openai_req.get("stream"):
        raise InvalidRequest("The 'stream_options' parameter is only allowed when 'stream' "
                             "is true.", param="stream_options", code="invalid_value")


def ignored_params(openai_req: Dict[str, Any], ignored: Any) -> List[str]:
    """Return the request fields in ``ignored`` (accepted, not forwarded), sorted."""
    return sorted(name for name in openai_req if name in ignored)


def merge_choices(responses: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Return one response holding the single choice of each (for ``n`` > 1).

    Choice ``i`` comes from ``responses[i]``; usage is summed.
    """
    first = responses[0]
    choices = [dict(r["choices"][0], index=i) for i, r in enumerate(responses)]
    usage = {key: sum(r["usage"][key] for r in responses) for key in first["usage"]}
    return dict(first, choices=choices, usage=usage)
