"""Native ``/api/chat`` replies -> a Responses API response and its event stream.

One state machine serves both: a non-streamed reply is fed as a single native
object, a stream line by line, so both produce the same output items in the
same order. Items open and close as Ollama's output changes kind (thinking,
text, a tool call), so text that came before a tool call is closed before the
call gets its own ``output_index`` (Ollama's layer reuses the index).

Events are dicts with ``type`` and a ``sequence_number`` rising from 0;
:func:`event_frame` writes one as ``event: <type>`` plus ``data: <json>``.
Pure: no clock, no randomness (ids come from the ``new_id`` argument).
"""
import json
from typing import Any, Callable, Dict, List, Optional

from ..errors import APIError
from .chat_stream import content_literal
from .common import ollama_usage_to_openai
from .forced import ForcedTool, forced_reply_to_call
from .models import ollama_time_to_unix
from .responses import ToolRef
from .responses_input import encrypt_reasoning

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_TEXT_DELTA = "response.output_text.delta"
#: What _event() returns when no events are wanted (a non-streamed reply).
_QUIET = {}  # type: Dict[str, Any]


def event_frame(event: Dict[str, Any]) -> bytes:
    """Return one SSE event as the Responses API frames it."""
    return ("event: %s\ndata: %s\n\n" % (event["type"], _dumps(event))).encode("utf-8")


def _logprobs(entries: Any) -> List[Dict[str, Any]]:
    """Return Responses-shaped logprobs for native entries."""
    def one(entry: Dict[str, Any]) -> Dict[str, Any]:
        token = entry.get("token", "")
        raw = entry.get("bytes")
        return {"token": token, "logprob": entry.get("logprob", 0.0),
                "bytes": list(raw) if raw is not None else list(token.encode("utf-8"))}
    out = []
    for entry in entries or ():
        item = one(entry)
        item["top_logprobs"] = [one(top) for top in entry.get("top_logprobs") or ()]
        out.append(item)
    return out


def usage(native: Dict[str, Any]) -> Dict[str, Any]:
    """Return Responses ``usage`` from a native final object's token counts.

    Ollama counts neither cached nor reasoning tokens apart: the details are 0,
    and thinking tokens are inside ``output_tokens``.
    """
    counts = ollama_usage_to_openai(native)
    return {"input_tokens": counts["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": counts["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counts["total_tokens"]}


class ResponsesStream:
    """Turns native ``/api/chat`` objects into Responses events and the final response.

    :param skeleton: the response object as the request echoes it
        (``status``, ``output`` and ``usage`` are filled in here).
    :param tools: native function name -> the client's tool.
    """

    encode = staticmethod(event_frame)
    #: A Responses stream ends with its terminal event, no ``[DONE]``.
    trailer = b""

    def __init__(self, skeleton: Dict[str, Any], tools: Dict[str, ToolRef],
                 new_id: Callable[[str], str], forced: Optional[ForcedTool] = None,
                 parallel_tool_calls: bool = True, max_tool_calls: Optional[int] = None,
                 encrypted_reasoning: bool = False, events: bool = True) -> None:
        self.response = dict(skeleton, status="in_progress", output=[])
        #: False for a non-streamed reply: only :attr:`response` is built.
        self._events = events
        self.done = False
        self._tools = tools
        self._new_id = new_id
        self._forced = forced
        self._call_limit = 1 if not parallel_tool_calls else max_tool_calls
        self._encrypted = encrypted_reasoning
        self._seq = 0
        self._started = False
        self._calls = 0
        self._item = None  # type: Optional[Dict[str, Any]]
        self._pieces = []  # type: List[bytes]  # JSON-escaped text of the open item
        self._logprobs = []  # type: List[Dict[str, Any]]
        self._forced_text = []  # type: List[str]
        self._fast_head = b""

    # -- framing helpers -----------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> Dict[str, Any]:
        if not self._events:
            return _QUIET
        event = dict(type=kind, **fields)
        event["sequence_number"] = self._seq
        self._seq += 1
        return event

    def _lifecycle(self, kind: str) -> Dict[str, Any]:
        """Return a ``response.*`` event carrying the response as it stands."""
        if not self._events:
            return _QUIET
        return self._event(kind, response=dict(self.response, output=list(self.response["output"])))

    def _index(self) -> int:
        return len(self.response["output"]) - 1

    # -- items -----------------------------------------------------------------------

    def _open(self, item: Dict[str, Any], events: List[Dict[str, Any]]) -> None:
        self.response["output"].append(item)
        self._item = item
        self._pieces, self._logprobs = [], []
        events.append(self._event("response.output_item.added", output_index=self._index(),
                                  item=dict(item, content=[]) if "content" in item else dict(item)))
        part = {"message": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                "reasoning": {"type": "reasoning_text", "text": ""}}.get(item["type"])
        if part is not None:
            events.append(self._event("response.content_part.added", item_id=item["id"],
                                      output_index=self._index(), content_index=0, part=part))
        if item["type"] == "message" and self._events:
            # The JSON of a plain delta event up to its text, laid out as
            # _event() lays it out, so the two paths cannot drift apart.
            template = _dumps({"type": _TEXT_DELTA, "item_id": item["id"],
                               "output_index": self._index(), "content_index": 0,
                               "logprobs": [], "delta": ""}).encode("utf-8")
            self._fast_head = (b"event: " + _TEXT_DELTA.encode() + b"\ndata: "
                               + template[:template.index(b'"delta":""') + len(b'"delta":')])

    def _close(self, events: List[Dict[str, Any]], status: str = "completed") -> None:
        item, self._item = self._item, None
        if item is None:
            return
        index = self._index()
        if item["type"] in ("message", "reasoning"):
            text = json.loads(b'"' + b"".join(self._pieces) + b'"') if self._pieces else ""
            if item["type"] == "message":
                part = {"type": "output_text", "text": text, "annotations": [],
                        "logprobs": self._logprobs}
                events.append(self._event("response.output_text.done", item_id=item["id"],
                                          output_index=index, content_index=0, text=text,
                                          logprobs=self._logprobs))
                item["status"] = status
            else:
                part = {"type": "reasoning_text", "text": text}
                events.append(self._event("response.reasoning_text.done", item_id=item["id"],
                                          output_index=index, content_index=0, text=text))
                if self._encrypted:
                    item["encrypted_content"] = encrypt_reasoning(text)
            events.append(self._event("response.content_part.done", item_id=item["id"],
                                      output_index=index, content_index=0, part=part))
            item["content"] = [part]
        events.append(self._event("response.output_item.done", output_index=index,
                                  item=dict(item)))

    def _text(self, kind: str, text: str, events: List[Dict[str, Any]],
              logprobs: Any = None) -> None:
        if self._item is None or self._item["type"] != kind:
            self._close(events)
            if kind == "message":
                self._open({"id": self._new_id("msg"), "type": "message", "status": "in_progress",
                            "role": "assistant", "content": []}, events)
            else:
                self._open({"id": self._new_id("rs"), "type": "reasoning", "summary": [],
                            "content": []}, events)
        item = self._item
        self._pieces.append(_dumps(text)[1:-1].encode("utf-8"))
        if kind == "message":
            entries = _logprobs(logprobs)
            self._logprobs += entries
            events.append(self._event(_TEXT_DELTA, item_id=item["id"], output_index=self._index(),
                                      content_index=0, logprobs=entries, delta=text))
        else:
            events.append(self._event("response.reasoning_text.delta", item_id=item["id"],
                                      output_index=self._index(), content_index=0, delta=text))

    def _call(self, native_name: str, arguments: str, events: List[Dict[str, Any]],
              call_id: Optional[str] = None) -> None:
        """Emit one complete tool call as its own output item."""
        if self._call_limit is not None and self._calls >= self._call_limit:
            return
        self._calls += 1
        self._close(events)
        ref = self._tools.get(native_name) or ToolRef("function", native_name, None)
        call_id = call_id or self._new_id("call")
        if ref.kind == "custom":
            try:
                decoded = json.loads(arguments)
            except ValueError:
                decoded = None
            text = decoded.get("input") if isinstance(decoded, dict) else None
            text = text if isinstance(text, str) else arguments
            item = {"id": self._new_id("ctc"), "type": "custom_tool_call", "call_id": call_id,
                    "name": ref.name, "input": ""}  # type: Dict[str, Any]
            done = ("response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
                    "input", text)
        else:
            item = {"id": self._new_id("fc"), "type": "function_call", "status": "in_progress",
                    "call_id": call_id, "name": ref.name, "arguments": ""}
            done = ("response.function_call_arguments.delta",
                    "response.function_call_arguments.done", "arguments", arguments)
        if ref.namespace:
            item["namespace"] = ref.namespace
        self._open(item, events)
        delta_type, done_type, field, value = done
        index = self._index()
        events.append(self._event(delta_type, item_id=item["id"], output_index=index, delta=value))
        extra = {"name": ref.name} if field == "arguments" else {}
        events.append(self._event(done_type, item_id=item["id"], output_index=index,
                                  **dict(extra, **{field: value})))
        item[field] = value
        if "status" in item:
            item["status"] = "completed"
        self._close(events)

    # -- the native stream -----------------------------------------------------------

    def _start(self, native: Dict[str, Any], events: List[Dict[str, Any]]) -> None:
        self._started = True
        created = ollama_time_to_unix(native.get("created_at"))
        if created:
            self.response["created_at"] = created
        events.append(self._lifecycle("response.created"))
        events.append(self._lifecycle("response.in_progress"))

    def fast_chunk(self, line: bytes) -> Optional[bytes]:
        """Return the delta event for a native line of plain text, else None.

        ``b""`` means the line yields nothing. Only taken while a message item
        is open and nothing else (forcing, log probabilities) is in play, where
        it yields exactly what :meth:`feed` would; the text's JSON string is
        copied as Ollama escaped it.
        """
        item = self._item
        if item is None or item["type"] != "message" or self._forced is not None:
            return None
        literal = content_literal(line)
        if literal is None:
            return None
        if len(literal) == 2:
            return b""
        self._pieces.append(literal[1:-1])
        seq, self._seq = self._seq, self._seq + 1
        return b"%s%s,\"sequence_number\":%d}\n\n" % (self._fast_head, literal, seq)

    def feed(self, native: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Return the events for one native object (a stream line, or a whole reply)."""
        events = []  # type: List[Dict[str, Any]]
        if not self._started:
            self._start(native, events)
        message = native.get("message") or {}
        if message.get("thinking"):
            self._text("reasoning", message["thinking"], events)
        content = message.get("content")
        if content:
            if self._forced is not None:
                self._forced_content(content, events)
            else:
                self._text("message", content, events, native.get("logprobs"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            arguments = function.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = _dumps(arguments)
            self._call(function.get("name", ""), arguments, events, call.get("id"))
        if native.get("done"):
            self._finish(native, events)
        return events if self._events else []

    def _forced_content(self, content: str, events: List[Dict[str, Any]]) -> None:
        forced = self._forced
        self._forced_text.append(content)
        single = len(forced.names) == 1 and self._tools.get(forced.names[0], ToolRef(
            "function", "", None)).kind == "function"
        if not single:
            return  # the name is only known once the whole reply is in
        item = self._item
        if item is None or item["type"] != "function_call":
            self._close(events)
            ref = self._tools[forced.names[0]]
            item = {"id": self._new_id("fc"), "type": "function_call", "status": "in_progress",
                    "call_id": self._new_id("call"), "name": ref.name, "arguments": ""}
            if ref.namespace:
                item["namespace"] = ref.namespace
            self._calls += 1
            self._open(item, events)
        events.append(self._event("response.function_call_arguments.delta", item_id=item["id"],
                                  output_index=self._index(), delta=content))

    def _finish_forced(self, truncated: bool, events: List[Dict[str, Any]]) -> None:
        text = "".join(self._forced_text)
        name, arguments = forced_reply_to_call(text, self._forced, truncated=truncated)
        item = self._item
        if item is not None and item["type"] == "function_call":
            # Streamed as it came: the arguments are the text the deltas carried.
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=self._index(), name=item["name"],
                                      arguments=text))
            item["arguments"] = text
            item["status"] = "incomplete" if truncated else "completed"
            self._close(events)
        else:
            self._call(name, arguments, events)

    def _finish(self, native: Dict[str, Any], events: List[Dict[str, Any]]) -> None:
        truncated = native.get("done_reason") == "length"
        if self._forced is not None and self._forced_text:
            self._finish_forced(truncated, events)
        self._close(events, "incomplete" if truncated else "completed")
        completed = ollama_time_to_unix(native.get("created_at"))
        self.response.update(usage=usage(native), completed_at=completed or None)
        if truncated:
            self.response.update(status="incomplete",
                                 incomplete_details={"reason": "max_output_tokens"})
            events.append(self._lifecycle("response.incomplete"))
        else:
            self.response["status"] = "completed"
            events.append(self._lifecycle("response.completed"))
        self.done = True

    def fail(self, exc: APIError) -> List[Dict[str, Any]]:
        """Return the terminal events for a failure after the stream started."""
        events = []  # type: List[Dict[str, Any]]
        if not self._started:
            self._start({}, events)
        self.response.update(status="failed", error={"code": "server_error",
                                                     "message": exc.message})
        events.append(self._lifecycle("response.failed"))
        self.done = True
        return events
