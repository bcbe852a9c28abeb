"""Native ``/api/chat`` NDJSON lines -> OpenAI ``chat.completion.chunk`` objects.

Pure: bytes and dicts in, bytes and dicts out. :meth:`ChatStream.feed` is the
reference translation; :meth:`ChatStream.fast_chunk` is a shortcut for the
line that makes up nearly every stream (a few tokens of plain content), taken
only where it yields exactly what ``feed`` would.
"""
import json
from typing import Any, Dict, List, Optional

from .chat import finish_reason, forced_call, ollama_logprobs_to_openai, ollama_tool_call_to_openai
from .common import SYSTEM_FINGERPRINT, ollama_created
from .common import ollama_usage_to_openai as _usage
from .forced import ForcedTool, JSONCompactor, forced_reply_to_call

# How Ollama (Go's encoding/json, fields in declaration order, omitempty)
# writes a line that carries nothing but content.
_CONTENT_HEAD = b'"message":{"role":"assistant","content":'
_CONTENT_TAIL = b'},"done":false}'
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def content_literal(line: bytes) -> Optional[bytes]:
    """Return the JSON string literal of a native line that carries only content, else None."""
    if not line.endswith(_CONTENT_TAIL):
        return None
    start = line.find(_CONTENT_HEAD)
    if start < 0:
        return None
    start += len(_CONTENT_HEAD)
    end = len(line) - len(_CONTENT_TAIL)
    # Exactly one JSON string, so no other message field followed it.
    if (end - start < 2 or line[start] != 34 or line[end - 1] != 34
            or line.find(b'"', start + 1, end - 1) >= 0 or line[end - 2] == 92):
        return None
    return line[start:end]


class ChatStream:
    """Turns native ``/api/chat`` NDJSON objects into OpenAI chunk dicts.

    Feed each native object to :meth:`feed`; it returns the chunks to send.
    After the ``done`` object it has returned the finish chunk (and the usage
    chunk when asked for) and :attr:`done` is true.

    With ``forced`` (a forced tool choice, see :func:`.chat.chat_forced_tool`)
    the content is the call's JSON: for one function the first chunk opens the
    call and each content line is passed on as an ``arguments`` delta; for
    several, the name is only known at the end, so the content is kept and the
    whole call is sent in one delta before the finish chunk. Either way the
    deltas add up to what :func:`.chat.ollama_chat_to_openai` returns.
    """

    def __init__(self, completion_id: str, created: int, model: str,
                 include_usage: bool = False, reasoning_field: str = "reasoning_content",
                 parallel_tool_calls: bool = True, forced: Optional[ForcedTool] = None) -> None:
        self.completion_id = completion_id
        self.include_usage = include_usage
        self.reasoning_field = reasoning_field
        self.parallel_tool_calls = parallel_tool_calls
        self.forced = forced
        self.done = False
        self._content = []  # type: List[str]
        self._logprobs = []  # type: List[Dict[str, Any]]
        self._compactor = JSONCompactor()
        self._started = False
        self._calls = 0
        self._base = {"id": completion_id, "object": "chat.completion.chunk",
                      "created": created, "model": model,
                      "system_fingerprint": SYSTEM_FINGERPRINT}
        self._stamped = False
        self._template()

    def _template(self) -> None:
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
        line (the first one, thinking, tool calls, logprobs, done, errors, a
        content string with a quote in it, any line of a forced tool call) it
        returns ``None`` and the caller
        decodes the line and uses :meth:`feed`. The content's JSON string is
        copied as Ollama escaped it, so it is never decoded and re-encoded.
        """
        if not self._started or self.forced is not None:
            return None
        literal = content_literal(line)
        if literal is None:
            return None
        if len(literal) == 2:
            return b""
        return self._content_prefix + literal + self._content_suffix

    def _feed_forced(self, native: Dict[str, Any], forced: ForcedTool) -> List[Dict[str, Any]]:
        chunks = []
        message = native.get("message") or {}
        single = len(forced.names) == 1
        head = {}  # type: Dict[str, Any]
        if not self._started:
            head = {"role": "assistant", "content": None}
            if single:
                call = forced_call(self.completion_id, forced.names[0], "")
                head["tool_calls"] = [dict(call, index=0)]
        if message.get("thinking") and self.reasoning_field != "none":
            head[self.reasoning_field] = message["thinking"]
        if head:
            chunks.append(self._chunk(head))
            self._started = True
        content = message.get("content") or ""
        self._content.append(content)
        if single:
            # Whitespace between tokens is dropped as it arrives, so the deltas
            # add up to the compact arguments of the non-streamed reply.
            piece = self._compactor.feed(content)
            logprobs = ollama_logprobs_to_openai(native.get("logprobs"))
            if piece or logprobs:
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                chunks.append(self._chunk(delta, logprobs=logprobs))
        else:
            self._logprobs.extend(native.get("logprobs") or ())
        if native.get("done"):
            done_reason = native.get("done_reason")
            # Raises UpstreamError on a reply of the wrong shape: the stream
            # then ends with an error event instead of a finish chunk.
            name, arguments = forced_reply_to_call("".join(self._content), forced,
                                                   truncated=done_reason == "length")
            if not single:
                call = dict(forced_call(self.completion_id, name, arguments), index=0)
                chunks.append(self._chunk({"tool_calls": [call]},
                                          logprobs=ollama_logprobs_to_openai(self._logprobs)))
            chunks.extend(self._finish(native, True))
        return chunks

    def _finish(self, native: Dict[str, Any], saw_tool_calls: bool) -> List[Dict[str, Any]]:
        self.done = True
        chunks = [self._chunk({}, finish_reason(native.get("done_reason"), saw_tool_calls))]
        if self.include_usage:
            chunks.append(dict(self._base, choices=[], usage=_usage(native)))
        return chunks

    def feed(self, native: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Return the OpenAI chunks for one native stream object."""
        if not self._stamped:  # the first line: every chunk carries Ollama's time
            self._stamped = True
            self._base["created"] = ollama_created(native, self._base["created"])
            self._template()
        if self.forced is not None:
            return self._feed_forced(native, self.forced)
        chunks = []
        delta = self._delta(native.get("message") or {})
        logprobs = ollama_logprobs_to_openai(native.get("logprobs"))
        # The done object is normally an empty metrics trailer: it only yields
        # a content chunk when it carries something (or nothing was sent yet).
        if delta or logprobs:
            chunks.append(self._chunk(delta, logprobs=logprobs))
            self._started = True
        if native.get("done"):
            chunks.extend(self._finish(native, self._calls > 0))
        return chunks
