"""Native ``/api/chat`` NDJSON lines -> OpenAI ``chat.completion.chunk`` objects.

Pure: bytes and dicts in, bytes and dicts out. :meth:`ChatStream.feed` is the
reference translation; :meth:`ChatStream.fast_chunk` is a shortcut for the
line that makes up nearly every stream (a few tokens of plain content), taken
only where it yields exactly what ``feed`` would.
"""
import json
from typing import Any, Dict, List, Optional

from .chat import finish_reason, ollama_logprobs_to_openai, ollama_tool_call_to_openai
from .common import SYSTEM_FINGERPRINT
from .common import ollama_usage_to_openai as _usage

# How Ollama (Go's encoding/json, fields in declaration order, omitempty)
# writes a line that carries nothing but content.
_CONTENT_HEAD = b'"message":{"role":"assistant","content":'
_CONTENT_TAIL = b'},"done":false}'
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ChatStream:
    """Turns native ``/api/chat`` NDJSON objects into OpenAI chunk dicts.

    Feed each native object to :meth:`feed`; it returns the chunks to send.
    After the ``done`` object it has returned the finish chunk (and the usage
    chunk when asked for) and :attr:`done` is true.
    """

    def __init__(self, completion_id: str, created: int, model: str,
                 include_usage: bool = False, reasoning_field: str = "reasoning_content",
                 parallel_tool_calls: bool = True) -> None:
        self.completion_id = completion_id
        self.include_usage = include_usage
        self.reasoning_field = reasoning_field
        self.parallel_tool_calls = parallel_tool_calls
        self.done = False
        self._started = False
        self._calls = 0
        self._base = {"id": completion_id, "object": "chat.completion.chunk",
                      "created": created, "model": model,
                      "system_fingerprint": SYSTEM_FINGERPRINT}
        # The JSON of a content-only chunk around its content string, cut out
        # of what _chunk() builds, so the two paths cannot drift apart.
        template = _dumps(self._chunk({"content": ""})).encode("utf-8")
        cut = template.index(b'"content":""') + len(b'"content":')
        self._content_prefix, self._content_suffix = template[:cut], template[cut + 2:]

    def _chunk(self, delta: Dict[str, Any], finish: Optional[str] = None,
               logprobs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        chunk = dict(self._base, choices=[{"index": 0, "delta": delta, "logprobs": logprobs,
                                           "finish_reason": finish}])
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _delta(self, message: Dict[str, Any]) -> Dict[str, Any]:
        delta = {}  # type: Dict[str, Any]
        if not self._started:
            delta["role"] = "assistant"
        content = message.get("content")
        if content or not self._started:
            delta["content"] = content or ""
        if message.get("thinking") and self.reasoning_field != "none":
            delta[self.reasoning_field] = message["thinking"]
        native_calls = message.get("tool_calls")
        if native_calls:
            if not self.parallel_tool_calls:
                native_calls = native_calls[:max(0, 1 - self._calls)]
            calls = []
            for call in native_calls:
                out = ollama_tool_call_to_openai(call, self._calls, self.completion_id)
                out["index"] = self._calls
                calls.append(out)
                self._calls += 1
            if calls:
                delta["tool_calls"] = calls
        return delta

    def fast_chunk(self, line: bytes) -> Optional[bytes]:
        """Return the chunk JSON for a native line of plain content, else ``None``.

        ``b""`` means the line yields no chunk (empty content). For any other
        line (the first one, thinking, tool calls, logprobs, done, errors, or a
        content string with a quote in it) it returns ``None`` and the caller
        decodes the line and uses :meth:`feed`. The content's JSON string is
        copied as Ollama escaped it, so it is never decoded and re-encoded.
        """
        if not self._started or not line.endswith(_CONTENT_TAIL):
            return None
        start = line.find(_CONTENT_HEAD)
        if start < 0:
            return None
        literal = line[start + len(_CONTENT_HEAD):-len(_CONTENT_TAIL)]
        # Exactly one JSON string, so no other message field followed it.
        if (len(literal) < 2 or literal[0] != 34 or literal[-1] != 34
                or b'"' in literal[1:-1] or literal.endswith(b'\\"')):
            return None
        if len(literal) == 2:
            return b""
        return self._content_prefix + literal + self._content_suffix

    def feed(self, native: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Return the OpenAI chunks for one native stream object."""
        chunks = []
        delta = self._delta(native.get("message") or {})
        logprobs = ollama_logprobs_to_openai(native.get("logprobs"))
        # The done object is normally an empty metrics trailer: it only yields
        # a content chunk when it carries something (or nothing was sent yet).
        if delta or logprobs:
            chunks.append(self._chunk(delta, logprobs=logprobs))
            self._started = True
        if native.get("done"):
            self.done = True
            chunks.append(self._chunk({}, finish_reason(native.get("done_reason"), self._calls > 0)))
            if self.include_usage:
                chunks.append(dict(self._base, choices=[], usage=_usage(native)))
        return chunks
