"""Shared checks for the /v1/responses tests: schemas, event order, SSE frames, scripted replies."""
import json
import pkgutil
import re
from typing import Any, Dict, Iterable, List, Tuple

from .ollama_emulator import Reply, _respond
from .schema_check import assert_matches

RESPONSE_SCHEMA = "responses.response"
EVENT_SCHEMA = "responses.stream_event"
INPUT_ITEMS_SCHEMA = "responses.input_items"

#: Keys that legitimately differ between two answers to the same request.
VOLATILE = frozenset(["id", "call_id", "created_at", "completed_at", "item_id", "sequence_number",
                      "previous_response_id"])

#: Keys the SDK's ``parse``/``stream`` helpers add to what the gateway sent.
SDK_ADDED = frozenset(["parsed", "parsed_arguments", "output_parsed", "snapshot"])


def has_schema(name: str) -> bool:
    """Return whether schema ``name`` is bundled (another engineer is generating these)."""
    try:
        return pkgutil.get_data("ollama_gateway.bundled_schemas", name + ".json") is not None
    except (FileNotFoundError, OSError):
        return False


def wire(obj: Any) -> Dict[str, Any]:
    """Return an SDK object as the JSON the gateway sent (fields it did not send left out)."""
    if isinstance(obj, dict):
        return obj
    # warnings=False: the SDK's Parsed* models serialise with pydantic union warnings.
    return obj.to_dict(mode="json", exclude_unset=True, warnings=False)


def check_response(obj: Any) -> Dict[str, Any]:
    """Validate a Response object against the bundled schema (when there is one); return its JSON."""
    doc = wire(obj)
    assert doc["object"] == "response", doc
    if has_schema(RESPONSE_SCHEMA):
        assert_matches(RESPONSE_SCHEMA, doc)
    return doc


def check_event(obj: Any) -> Dict[str, Any]:
    """Validate one streamed event against the bundled schema (when there is one); return its JSON."""
    doc = wire(obj)
    if has_schema(EVENT_SCHEMA):
        assert_matches(EVENT_SCHEMA, doc)
    return doc


def check_input_items(page: Any) -> Dict[str, Any]:
    """Validate a page of input items (raw JSON) against the bundled schema (when there is one)."""
    assert page["object"] == "list", page
    if has_schema(INPUT_ITEMS_SCHEMA):
        assert_matches(INPUT_ITEMS_SCHEMA, page)
    return page


def normalise(doc: Any) -> Any:
    """Return ``doc`` (JSON, or an SDK object) without ids and timestamps, and without the
    SDK's ``parsed`` additions."""
    if hasattr(doc, "to_dict"):
        doc = wire(doc)
    if isinstance(doc, dict):
        return {k: normalise(v) for k, v in doc.items() if k not in VOLATILE and k not in SDK_ADDED}
    if isinstance(doc, list):
        return [normalise(v) for v in doc]
    return doc


# -- event order ---------------------------------------------------------------------------

_R = "response."
_ITEM = (
    r"(?:{r}output_item\.added "
    r"(?:"
    # a message: one or more content parts, each with its text deltas
    r"(?:{r}content_part\.added (?:{r}output_text\.delta )*{r}output_text\.done {r}content_part\.done )+"
    # a function call: argument deltas
    r"|(?:{r}function_call_arguments\.delta )*{r}function_call_arguments\.done "
    # a reasoning item: summary parts or reasoning text (with or without content parts)
    r"|(?:{r}reasoning_summary_part\.added (?:{r}reasoning_summary_text\.delta )*"
    r"{r}reasoning_summary_text\.done {r}reasoning_summary_part\.done )*"
    r"(?:(?:{r}content_part\.added )?(?:{r}reasoning_text\.delta )*{r}reasoning_text\.done "
    r"(?:{r}content_part\.done )?)*"
    r")"
    r"{r}output_item\.done )").format(r=re.escape(_R))
_COMPLETE = re.compile(r"{r}created (?:{r}in_progress )?{item}*{r}(?:completed|incomplete) $".format(
    r=re.escape(_R), item=_ITEM))


def assert_event_order(events: List[Dict[str, Any]]) -> None:
    """Check that the events of a finished stream come in OpenAI's order, with consistent indexes.

    ``events`` are the JSON objects of the stream, in the order received.
    """
    types = [e["type"] for e in events]
    assert _COMPLETE.match("".join(t + " " for t in types)), "event order:\n" + "\n".join(types)
    assert_sequence_numbers(events)
    # every item's events carry its output_index, counted from 0 in order
    index = -1
    item_id = None
    for event in events:
        if event["type"] == "response.output_item.added":
            index += 1
            assert event["output_index"] == index, event
            item_id = event["item"].get("id")
        elif "output_index" in event:
            assert event["output_index"] == index, event
            if "item_id" in event:
                assert event["item_id"] == item_id, event
    lifecycle = [e["response"]["id"] for e in events if "response" in e]
    assert len(set(lifecycle)) == 1, lifecycle


def assert_sequence_numbers(events: List[Dict[str, Any]]) -> None:
    numbers = [e.get("sequence_number") for e in events]
    assert numbers and numbers[0] == 0, numbers
    assert all(isinstance(n, int) for n in numbers), numbers
    assert all(a < b for a, b in zip(numbers, numbers[1:])), numbers


# -- raw SSE frames ---------------------------------------------------------------------------

def iter_frames(lines: Iterable[str]) -> Iterable[Tuple[str, str]]:
    """Yield ``(event, data)`` of each SSE frame; fail on fields other than event and data."""
    event, data = "", []  # type: Tuple[str, List[str]]
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        assert field in ("event", "data"), "unexpected SSE field %r" % field
        if field == "event":
            event = value
        else:
            data.append(value)
    assert not data, "stream ended inside an event (no blank line)"


# -- scripted replies ------------------------------------------------------------------------------

def chat_reply(lines: List[Dict[str, Any]]) -> Reply:
    """Return a reply for ``/api/chat`` made of ``lines``: streamed as NDJSON if the request
    streams, else folded into one JSON body, as Ollama answers the same generation both ways."""
    def send(handler: Any, rec: Any) -> None:
        _respond(rec.json if isinstance(rec.json, dict) else {}, lines, chat=True).send(handler, rec)
    return Reply("chat %d lines, either way" % len(lines), send)


def output_texts(response: Any) -> List[str]:
    return [part.text for item in response.output if item.type == "message"
            for part in item.content if part.type == "output_text"]


def reasoning_text(item: Any) -> str:
    """Return the text of a reasoning item, from its summary or its content."""
    parts = list(getattr(item, "summary", None) or []) + list(getattr(item, "content", None) or [])
    return "".join(getattr(p, "text", "") for p in parts)


def json_args(call: Any) -> Dict[str, Any]:
    args = json.loads(call.arguments)
    assert isinstance(args, dict), call.arguments
    return args
