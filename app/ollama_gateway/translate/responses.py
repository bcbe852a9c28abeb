"""Pure translation of OpenAI Responses API requests to Ollama's native ``/api/chat``.

Dicts in, dicts out: no Flask, no store, no clock. What a request needs from
elsewhere comes in as arguments: the stored conversation a
``previous_response_id`` continues (``history``), the stored items an
``item_reference`` names (``references``), and an id factory for the items the
client sent without one. The reply side (output items, the event stream) is
:mod:`.responses_stream`.

Ollama's own ``/v1/responses`` (``openai/responses.go``) drops what it cannot
map; here every input item type and tool type is either mapped or refused
with a 400 naming it, and hosted tools only OpenAI runs are listed in the
ignored-params header instead of being offered to the model.
"""
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import InvalidRequest
from .chat import THINK
from .common import check_function_name, clip, sampling_options
from .common import unsupported as _unsupported
from .forced import ForcedTool, forced_tool, with_instruction
from .responses_input import NAMESPACE_SEPARATOR, History, normalise

#: Known fields that cannot change what Ollama generates: accepted, echoed
#: where the spec echoes them, not forwarded, listed in X-Gateway-Ignored-Params.
RESPONSES_IGNORED = frozenset((
    "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "service_tier", "truncation", "moderation",
    "context_management", "stream_options",
))

#: Known fields the gateway does not implement: 400 naming the field.
RESPONSES_UNSUPPORTED = {
    "prompt": "Stored prompts are not supported by this gateway; send 'instructions' and "
              "'input' instead.",
    "conversation": "Conversations are not supported by this gateway; use "
                    "'previous_response_id' to continue a stored response.",
}

#: Tools that only OpenAI's servers run. They are not offered to the model
#: (Codex CLI declares web_search by default, so refusing would break it).
HOSTED_TOOLS = frozenset((
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
    "file_search", "code_interpreter", "computer_use_preview", "computer", "image_generation",
    "mcp", "tool_search",
))


class ToolRef(NamedTuple):
    """What a native function name stands for in the client's tool list."""

    kind: str  # "function" or "custom"
    name: str
    namespace: Optional[str]


class ResponsesRequest(NamedTuple):
    """A Responses request translated: the native body and what the reply side needs."""

    native: Dict[str, Any]
    #: Native function name -> the client's tool.
    tools: Dict[str, ToolRef]
    #: Set when ``tool_choice`` forces a call (constrained decoding).
    forced: Optional[ForcedTool]
    #: The request's input items, normalised and with ids (stored for input_items).
    input_items: List[Dict[str, Any]]
    #: Accepted fields that were not forwarded, for X-Gateway-Ignored-Params.
    ignored: List[str]
    #: ``param`` -> JSON Schema to check before any upstream call.
    schemas: Dict[str, Dict[str, Any]]


# -- tools -----------------------------------------------------------------------

def _custom_function(tool: Dict[str, Any], native_name: str) -> Dict[str, Any]:
    """Return the native function that stands for a freeform custom tool."""
    description = tool.get("description") or ""
    fmt = tool.get("format") or {"type": "text"}
    if fmt.get("type") == "grammar":
        # Ollama cannot constrain a call by a grammar; the model gets the grammar
        # as text instead of having it dropped (as Ollama's own layer does).
        description += ("\n\nThe input must follow this %s grammar:\n%s"
                        % (fmt.get("syntax", "lark"), fmt.get("definition", ""))).rstrip()
    return {"type": "function", "function": {
        "name": native_name, "description": description.strip(),
        "parameters": {"type": "object", "required": ["input"], "properties": {
            "input": {"type": "string", "description": "The raw input for the tool."}}}}}


def _function(tool: Dict[str, Any], native_name: str) -> Dict[str, Any]:
    function = {"name": native_name}  # type: Dict[str, Any]
    if tool.get("description"):
        function["description"] = tool["description"]
    # Forwarded verbatim: every JSON Schema keyword kept, as on chat.
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


class _Tools(NamedTuple):
    native: List[Dict[str, Any]]
    refs: Dict[str, ToolRef]
    ignored: List[str]
    schemas: Dict[str, Dict[str, Any]]


def _tools(tools: Sequence[Dict[str, Any]]) -> _Tools:
    """Return the native functions for the client's tools, and what each name stands for."""
    native, refs, ignored, schemas = [], {}, [], {}  # type: ignore
    entries = []  # (param, tool, namespace)
    for i, tool in enumerate(tools):
        kind = tool["type"]
        if kind == "namespace":
            entries += [("tools[%d].tools[%d]" % (i, k), inner, tool["name"])
                        for k, inner in enumerate(tool.get("tools") or ())]
        elif kind in HOSTED_TOOLS:
            ignored.append("tools[%d] (%s)" % (i, kind))
        elif kind in ("function", "custom"):
            entries.append(("tools[%d]" % i, tool, None))
        else:
            raise _unsupported("Tools of type '%s' are not supported by this gateway; declare "
                               "it as a function tool." % clip(kind), "tools[%d].type" % i)
    for param, tool, namespace in entries:
        name = tool["name"]
        # The namespaced native name (ns__name) may be longer: only the client's is checked.
        check_function_name(name, param + ".name")
        native_name = namespace + NAMESPACE_SEPARATOR + name if namespace else name
        if native_name in refs:
            raise InvalidRequest("Duplicate tool name '%s'." % clip(native_name),
                                 param=param + ".name", code="invalid_value")
        if tool["type"] == "custom":
            native.append(_custom_function(tool, native_name))
        else:
            function = _function(tool, native_name)
            native.append(function)
            schemas[param + ".parameters"] = function["function"]["parameters"]
        refs[native_name] = ToolRef(tool["type"], name, namespace)
    return _Tools(native, refs, ignored, schemas)


def _chosen(choice: Any, refs: Dict[str, ToolRef], param: str) -> str:
    """Return the native name of the tool a tool_choice entry names."""
    kind = choice.get("type")
    if kind in HOSTED_TOOLS or kind not in ("function", "custom"):
        raise _unsupported("tool_choice cannot force the '%s' tool: it only runs on OpenAI's "
                           "servers." % kind if kind in HOSTED_TOOLS else
                           "tool_choice of type '%s' is not supported." % clip(kind), param)
    for native_name, ref in refs.items():
        if ref.kind == kind and ref.name == choice.get("name") and (
                choice.get("namespace") in (None, ref.namespace)):
            return native_name
    raise InvalidRequest("tool_choice names the %s tool '%s', which is not in 'tools'."
                         % (kind, clip(choice.get("name"))), param=param + ".name",
                         code="invalid_value")


def _tool_plan(openai_req: Dict[str, Any], tools: _Tools
               ) -> Tuple[Optional[List[Dict[str, Any]]], Optional[ForcedTool]]:
    """Return the native tools to offer and the forced choice, from ``tool_choice``."""
    choice = openai_req.get("tool_choice", "auto")
    names = list(tools.refs)
    mode = choice if isinstance(choice, str) else "named"
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        mode = choice.get("mode", "auto")
        names = [_chosen(entry, tools.refs, "tool_choice.tools[%d]" % k)
                 for k, entry in enumerate(choice.get("tools") or ())]
    elif isinstance(choice, dict):
        names = [_chosen(choice, tools.refs, "tool_choice")]
        mode = "required"
    if mode == "none" or not names:
        if mode == "required":
            raise InvalidRequest("tool_choice 'required' needs at least one function or custom "
                                 "tool in 'tools'.", param="tool_choice", code="invalid_value")
        return None, None
    offered = [t for t in tools.native if t["function"]["name"] in names]
    if mode == "required":
        return None, forced_tool([t["function"] for t in offered], names)
    return offered, None


# -- the request -------------------------------------------------------------------

def _check_unsupported(openai_req: Dict[str, Any]) -> None:
    for name, message in RESPONSES_UNSUPPORTED.items():
        if name in openai_req:
            raise _unsupported(message, name, code="unsupported_parameter")
    if openai_req.get("background"):
        raise _unsupported("Background responses are not supported by this gateway; "
                           "stream the response instead.", "background",
                           code="unsupported_parameter")


def _format(openai_req: Dict[str, Any]) -> Any:
    fmt = (openai_req.get("text") or {}).get("format") or {"type": "text"}
    if fmt["type"] == "json_object":
        return "json"
    if fmt["type"] == "json_schema":
        return fmt["schema"]
    return None


def openai_responses_to_ollama(openai_req: Dict[str, Any], model: str,
                               new_id: Callable[[str], str],
                               history: Sequence[Dict[str, Any]] = (),
                               references: Optional[Dict[str, Dict[str, Any]]] = None,
                               num_ctx: Optional[int] = None,
                               keep_alive: Any = None) -> ResponsesRequest:
    """Return the native ``/api/chat`` body and reply context for a validated request.

    :param history: the items of the stored conversation being continued,
        oldest first (inputs and outputs of every earlier response).
    :param references: stored items by id, for ``item_reference`` inputs.
    :raises InvalidRequest: for what the schema allows but cannot be honoured.
    """
    _check_unsupported(openai_req)
    raw_input = openai_req["input"] if "input" in openai_req else []
    if isinstance(raw_input, str):
        raw_input = [{"type": "message", "role": "user", "content": raw_input}]
    items = []
    for i, item in enumerate(raw_input):
        if item.get("type") == "item_reference":
            found = (references or {}).get(item["id"])
            if found is None:
                raise InvalidRequest("Item with id '%s' not found." % clip(item["id"]),
                                     param="input[%d].id" % i, code="invalid_value")
            item = found
        items.append(normalise(item, new_id))

    tools = _tools(openai_req.get("tools") or ())
    offered, forced = _tool_plan(openai_req, tools)
    history_builder = History({(ref.namespace, ref.name): native
                                for native, ref in tools.refs.items()})
    if openai_req.get("instructions"):
        history_builder.messages.append({"role": "system", "content": openai_req["instructions"]})
    for item in history:
        history_builder.add(item, "previous_response_id")
    for i, item in enumerate(items):
        history_builder.add(item, "input[%d]" % i)
    messages = history_builder.messages
    if not any(m["role"] != "system" for m in messages):
        raise InvalidRequest("The request has no input: send 'input' (a string or a list of "
                             "items).", param="input", code="missing_required_parameter")

    fmt = _format(openai_req)
    schemas = dict(tools.schemas)
    if isinstance(fmt, dict):
        schemas["text.format.schema"] = fmt
    if forced is not None:
        if fmt is not None:
            raise _unsupported("A forced tool_choice cannot be combined with a JSON 'text.format':"
                               " both would constrain the same output.", "text.format")
        fmt = forced.format
        messages = with_instruction(messages, forced.instruction)

    sampling = {name: openai_req[name] for name in ("temperature", "top_p") if name in openai_req}
    if "max_output_tokens" in openai_req:
        sampling["max_tokens"] = openai_req["max_output_tokens"]
    native = {"model": model, "messages": messages, "stream": bool(openai_req.get("stream")),
              "options": sampling_options(sampling, num_ctx)}  # type: Dict[str, Any]
    if fmt is not None:
        native["format"] = fmt
    if offered:
        native["tools"] = offered
    effort = (openai_req.get("reasoning") or {}).get("effort")
    if effort is not None:
        native["think"] = THINK[effort]
    ignored = sorted(name for name in openai_req if name in RESPONSES_IGNORED)
    if "message.output_text.logprobs" in (openai_req.get("include") or ()):
        native["logprobs"] = True
        if "top_logprobs" in openai_req:
            native["top_logprobs"] = openai_req["top_logprobs"]
    elif "top_logprobs" in openai_req:
        ignored.append("top_logprobs")
    if (openai_req.get("reasoning") or {}).get("summary") is not None:
        ignored.append("reasoning.summary")
    if (openai_req.get("text") or {}).get("verbosity") is not None:
        ignored.append("text.verbosity")
    if keep_alive is not None:
        native["keep_alive"] = keep_alive
    return ResponsesRequest(native, tools.refs, forced, items, sorted(ignored) + tools.ignored,
                            schemas)


# -- echoes and listings -----------------------------------------------------------

def response_skeleton(openai_req: Dict[str, Any], response_id: str, created_at: int,
                      model: str, store: bool) -> Dict[str, Any]:
    """Return the response object before any output: the request's settings echoed."""
    text = dict(openai_req.get("text") or {})
    text.setdefault("format", {"type": "text"})
    reasoning = openai_req.get("reasoning") or {}
    return {
        "id": response_id, "object": "response", "created_at": created_at,
        "status": "in_progress", "background": False, "completed_at": None, "error": None,
        "incomplete_details": None, "instructions": openai_req.get("instructions"),
        "max_output_tokens": openai_req.get("max_output_tokens"),
        "max_tool_calls": openai_req.get("max_tool_calls"), "model": model, "output": [],
        "parallel_tool_calls": openai_req.get("parallel_tool_calls", True),
        "previous_response_id": openai_req.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": openai_req.get("service_tier", "default"), "store": store,
        # Unset sampling stays unset upstream, so the echo says null, not OpenAI's 1.0.
        "temperature": openai_req.get("temperature"), "top_p": openai_req.get("top_p"),
        "text": text, "tool_choice": openai_req.get("tool_choice", "auto"),
        "tools": openai_req.get("tools", []), "top_logprobs": openai_req.get("top_logprobs", 0),
        "truncation": openai_req.get("truncation", "disabled"),
        "metadata": openai_req.get("metadata", {}),
        # Echoed only when sent: the spec has no null for them.
        **{name: openai_req[name] for name in ("user", "safety_identifier", "prompt_cache_key")
           if name in openai_req}}


def input_items_page(items: Sequence[Dict[str, Any]], limit: int = 20, order: str = "desc",
                     after: Optional[str] = None) -> Dict[str, Any]:
    """Return one page of a stored response's input items, as ``GET .../input_items`` lists it.

    :raises InvalidRequest: for an ``after`` id that is not among the items.
    """
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest("No input item with id '%s' in this response." % clip(after),
                                 param="after", code="invalid_value")
        start = ids.index(after) + 1
    page = ordered[start:start + limit]
    return {"object": "list", "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": start + limit < len(ordered)}
