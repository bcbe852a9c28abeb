"""Pure translation between OpenAI chat shapes and Ollama's native ``/api/chat``.

Dicts in, dicts out: no Flask, no requests, no clock, no randomness. Ids and
timestamps are arguments. Requests have already passed the bundled OpenAI
schema, so types are known; what is checked here is what the schema cannot
say (data URLs, tool-call references, values Ollama cannot honour).

Direction is in the name: ``openai_*_to_ollama`` builds a native request,
``ollama_*_to_openai`` builds an OpenAI response.
"""
import json
from typing import Any, Dict, List, Optional, Tuple

from ..errors import InvalidRequest
from .common import (SYSTEM_FINGERPRINT, check_function_name, check_stream_options, clip,
                     ignored_params, ollama_created, sampling_options)
from .common import ollama_usage_to_openai as _usage
from .common import unsupported as _unsupported
from .content import image_b64, tool_arguments
from .forced import (ForcedTool, allowed_tool_names, forced_reply_to_call, forced_tool,
                     with_instruction)

# Known OpenAI fields that cannot change what Ollama generates (metadata,
# billing, caching hints): accepted, not forwarded, and reported to the client
# in the X-Gateway-Ignored-Params header so nothing is dropped in silence.
CHAT_IGNORED = frozenset((
    "user", "metadata", "store", "service_tier", "safety_identifier",
    "prompt_cache_key", "prompt_cache_retention", "verbosity", "prediction",
    "moderation",
))

# Known fields Ollama has no equivalent for: refused with 400 naming the field.
CHAT_UNSUPPORTED = {
    "audio": "Audio output is not supported by Ollama.",
    "web_search_options": "Web search is not supported by Ollama.",
    "functions": "The deprecated 'functions' parameter is not supported; use 'tools'.",
    "function_call": "The deprecated 'function_call' parameter is not supported; use 'tool_choice'.",
}

# reasoning_effort -> native think (Ollama's own table, section 2.5).
THINK = {"none": False, "minimal": "low", "low": "low", "medium": "medium",
         "high": "high", "xhigh": "max", "max": "max"}


def _text(content: Any, param: str) -> str:
    """Return the text of a string or of an array of text/refusal parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            texts.append(part["text"])
        elif kind == "refusal":
            texts.append(part["refusal"])
        else:
            raise _unsupported("Content parts of type '%s' are not supported in this message."
                               % clip(kind),
                               "%s[%d].type" % (param, j))
    # one native string per message, parts separated by a blank line.
    return "\n\n".join(texts)


def _user_message(message: Dict[str, Any], param: str) -> Dict[str, Any]:
    content = message["content"]
    if isinstance(content, str):
        return {"role": "user", "content": content}
    texts, images = [], []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text":
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(image_b64(part["image_url"]["url"],
                                     "%s.content[%d].image_url.url" % (param, j)))
        else:
            raise _unsupported("Content parts of type '%s' are not supported by Ollama."
                               % clip(kind),
                               "%s.content[%d].type" % (param, j))
    native = {"role": "user", "content": "\n\n".join(texts)}  # type: Dict[str, Any]
    if images:
        native["images"] = images
    return native


def _assistant_message(message: Dict[str, Any], param: str,
                       call_names: Dict[str, str]) -> Dict[str, Any]:
    if message.get("audio") is not None:
        raise _unsupported("Assistant audio is not supported by Ollama.", param + ".audio")
    content = _text(message.get("content"), param + ".content")
    if not content and message.get("refusal"):
        content = message["refusal"]
    native = {"role": "assistant", "content": content}  # type: Dict[str, Any]
    thinking = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thinking, str) and thinking:
        native["thinking"] = thinking
    calls = []
    for k, call in enumerate(message.get("tool_calls") or ()):
        call_param = "%s.tool_calls[%d]" % (param, k)
        if call["type"] != "function":
            raise _unsupported("Tool calls of type '%s' are not supported." % clip(call["type"]),
                               call_param + ".type")
        function = call["function"]
        call_names[call["id"]] = function["name"]
        calls.append({"id": call["id"], "function": {
            "index": k, "name": function["name"],
            "arguments": tool_arguments(function["arguments"], call_param + ".function.arguments")}})
    if calls:
        native["tool_calls"] = calls
    return native


def openai_messages_to_ollama(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Return native chat messages for OpenAI ``messages``."""
    call_names = {}  # type: Dict[str, str]
    native = []
    for i, message in enumerate(messages):
        role, param = message["role"], "messages[%d]" % i
        if role in ("system", "developer"):
            # Native chat templates know "system"; "developer" is OpenAI's new name for it.
            native.append({"role": "system", "content": _text(message["content"], param + ".content")})
        elif role == "user":
            native.append(_user_message(message, param))
        elif role == "assistant":
            native.append(_assistant_message(message, param, call_names))
        elif role == "tool":
            # Ollama matches tool results to calls by function name; OpenAI by id.
            call_id = message["tool_call_id"]
            if call_id not in call_names:
                raise InvalidRequest(
                    "Invalid 'tool_call_id': '%s' does not match a tool call of an earlier "
                    "assistant message." % clip(call_id), param=param + ".tool_call_id",
                    code="invalid_value")
            native.append({"role": "tool", "content": _text(message["content"], param + ".content"),
                           "tool_name": call_names[call_id], "tool_call_id": call_id})
        else:
            raise _unsupported("Messages with role '%s' are not supported; use 'tool'." % clip(role),
                               param + ".role")
    return native


def _tool_plan(openai_req: Dict[str, Any]) -> Tuple[Optional[List[Dict[str, Any]]],
                                                   Optional[List[str]]]:
    """Return the tools to send natively, and the names of a forced choice (or None)."""
    tools = openai_req.get("tools")
    choice = openai_req.get("tool_choice", "auto")
    if not tools:
        if choice not in ("none", "auto"):
            raise InvalidRequest("Invalid value for 'tool_choice': 'tool_choice' is only allowed "
                                 "when 'tools' are specified.", param="tool_choice",
                                 code="invalid_value")
        return None, None
    if choice == "none":
        # "none" means the model must not see the tools at all.
        return None, None
    for k, tool in enumerate(tools):
        if tool["type"] != "function":
            raise _unsupported("Tools of type '%s' are not supported by Ollama." % clip(tool["type"]),
                               "tools[%d].type" % k)
    names = [tool["function"]["name"] for tool in tools]
    if choice == "auto":
        # Forwarded verbatim: Ollama's own layer re-encodes tools through typed
        # structs and loses schema keys such as additionalProperties and enum.
        return tools, None
    if choice == "required":
        return None, names
    if choice["type"] == "function":
        name = choice["function"]["name"]
        if name not in names:
            raise InvalidRequest("Invalid value for 'tool_choice.function.name': no function "
                                 "named %s in 'tools'." % clip(json.dumps(name)),
                                 param="tool_choice.function.name", code="invalid_value")
        return None, [name]
    if choice["type"] == "allowed_tools":
        allowed = choice["allowed_tools"]
        chosen = allowed_tool_names(allowed["tools"], names, "tool_choice.allowed_tools.tools")
        if allowed["mode"] == "auto":
            # Narrowing needs no enforcement: the model only sees the allowed tools.
            return [tool for tool in tools if tool["function"]["name"] in chosen], None
        return None, chosen
    raise _unsupported("tool_choice of type '%s' is not supported by Ollama."
                       % clip(choice["type"]),
                       "tool_choice.type")


def chat_forced_tool(openai_req: Dict[str, Any]) -> Optional[ForcedTool]:
    """Return the forced tool call a validated chat request asks for, or None.

    ``tool_choice`` "required", a named function and ``allowed_tools`` in
    required mode are forced; "auto", "none" and ``allowed_tools`` in auto mode
    are not.

    .. versionadded:: 0.2
    """
    _, forced_names = _tool_plan(openai_req)
    if forced_names is None:
        return None
    return forced_tool([tool["function"] for tool in openai_req["tools"]], forced_names)


def chat_output_schemas(openai_req: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """Return ``(param, JSON Schema)`` for each client schema that becomes native ``format``.

    The caller checks each one against the meta-schema before any upstream
    call, so a broken schema is a 400 that names where it came from. Every
    function tool's ``parameters`` is listed, forced or not: Ollama decodes
    them into typed structs and fails on a schema that is not one.

    .. versionadded:: 0.2
    """
    out = [("tools[%d].function.parameters" % k, tool["function"]["parameters"])
           for k, tool in enumerate(openai_req.get("tools") or ())
           if tool.get("type") == "function"
           and isinstance(tool["function"].get("parameters"), dict)]
    _, forced_names = _tool_plan(openai_req)
    if forced_names is not None:
        return out
    fmt = _format(openai_req.get("response_format"))
    return out + [("response_format.json_schema.schema", fmt)] if isinstance(fmt, dict) else out


def _format(response_format: Optional[Dict[str, Any]]) -> Any:
    kind = (response_format or {}).get("type", "text")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format of type 'json_schema' needs a JSON Schema "
                                 "object in 'json_schema.schema'.",
                                 param="response_format.json_schema.schema",
                                 code="missing_required_parameter")
        return schema
    return None


def _check_function_names(openai_req: Dict[str, Any]) -> None:
    for k, tool in enumerate(openai_req.get("tools") or ()):
        if tool.get("type") == "function":
            check_function_name(tool["function"]["name"], "tools[%d].function.name" % k)


def _check_unsupported(openai_req: Dict[str, Any]) -> None:
    _check_function_names(openai_req)
    for name, message in CHAT_UNSUPPORTED.items():
        if name in openai_req:
            raise _unsupported(message, name, code="unsupported_parameter")
    if "audio" in (openai_req.get("modalities") or ()):
        raise _unsupported("Audio output is not supported by Ollama.", "modalities")
    if openai_req.get("logit_bias"):
        raise _unsupported("logit_bias is not supported by Ollama.", "logit_bias",
                           code="unsupported_parameter")
    if openai_req.get("n", 1) > 1 and openai_req.get("stream"):
        raise _unsupported("n > 1 is only supported without streaming.", "n")
    check_stream_options(openai_req)
    if "top_logprobs" in openai_req and not openai_req.get("logprobs"):
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.",
                             param="top_logprobs", code="invalid_value")


def openai_chat_to_ollama(openai_req: Dict[str, Any], model: str,
                          num_ctx: Optional[int] = None,
                          keep_alive: Any = None) -> Dict[str, Any]:
    """Return the native ``/api/chat`` body for a validated OpenAI chat request.

    :param model: the Ollama model name (after any alias mapping).
    :raises InvalidRequest: for what the schema allows but Ollama cannot honour.
    """
    _check_unsupported(openai_req)
    native = {"model": model, "messages": openai_messages_to_ollama(openai_req["messages"]),
              "stream": bool(openai_req.get("stream")),
              "options": sampling_options(openai_req, num_ctx)}  # type: Dict[str, Any]
    fmt = _format(openai_req.get("response_format"))
    tools, forced_names = _tool_plan(openai_req)
    if forced_names is not None:
        if isinstance(fmt, dict):
            raise _unsupported("response_format of type 'json_schema' cannot be combined with a "
                               "forced tool_choice: the reply cannot match both schemas.",
                               "response_format")
        # json_object is implied: the forced schema is a JSON object too.
        forced = forced_tool([tool["function"] for tool in openai_req["tools"]], forced_names)
        native["messages"] = with_instruction(native["messages"], forced.instruction)
        fmt = forced.format
    if fmt is not None:
        native["format"] = fmt
    if tools is not None:
        native["tools"] = tools
    if "reasoning_effort" in openai_req:
        native["think"] = THINK[openai_req["reasoning_effort"]]
    if openai_req.get("logprobs"):
        native["logprobs"] = True
        if "top_logprobs" in openai_req:
            native["top_logprobs"] = openai_req["top_logprobs"]
    if keep_alive is not None:
        native["keep_alive"] = keep_alive
    return native


def chat_ignored_params(openai_req: Dict[str, Any]) -> List[str]:
    """Return the known request fields that were accepted but not forwarded."""
    return ignored_params(openai_req, CHAT_IGNORED)


# -- responses ---------------------------------------------------------------

def _token_logprob(entry: Dict[str, Any]) -> Dict[str, Any]:
    token = entry.get("token", "")
    raw = entry.get("bytes")
    return {"token": token, "logprob": entry.get("logprob", 0.0),
            "bytes": list(raw) if raw is not None else list(token.encode("utf-8"))}


def ollama_logprobs_to_openai(entries: Optional[List[Dict[str, Any]]]) -> Optional[Dict[str, Any]]:
    """Return an OpenAI ``logprobs`` object for native logprob entries."""
    if not entries:
        return None
    content = []
    for entry in entries:
        item = _token_logprob(entry)
        item["top_logprobs"] = [_token_logprob(top) for top in entry.get("top_logprobs") or ()]
        content.append(item)
    return {"content": content, "refusal": None}


def _call_id(completion_id: str, index: int) -> str:
    # Older Ollama versions send tool calls without an id; derive a stable one
    # that is unique because the completion id is.
    return "call_%s_%d" % (completion_id.rsplit("-", 1)[-1], index)


def ollama_tool_call_to_openai(call: Dict[str, Any], index: int,
                               completion_id: str) -> Dict[str, Any]:
    """Return an OpenAI tool call for a native one; ``arguments`` as a JSON string."""
    function = call.get("function") or {}
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return {"id": call.get("id") or _call_id(completion_id, index), "type": "function",
            "function": {"name": function.get("name", ""), "arguments": arguments}}


def forced_call(completion_id: str, name: str, arguments: str) -> Dict[str, Any]:
    """Return the OpenAI tool call for a forced reply (always the completion's first)."""
    return {"id": _call_id(completion_id, 0), "type": "function",
            "function": {"name": name, "arguments": arguments}}


def finish_reason(done_reason: Optional[str], saw_tool_calls: bool) -> str:
    """Return the OpenAI ``finish_reason`` for a native ``done_reason``."""
    if done_reason == "length":
        # A tool call cut short by the token limit is still a truncation.
        return "length"
    return "tool_calls" if saw_tool_calls else "stop"


def ollama_chat_to_openai(native: Dict[str, Any], completion_id: str, created: int,
                          model: str, reasoning_field: str = "reasoning_content",
                          parallel_tool_calls: bool = True,
                          forced: Optional[ForcedTool] = None) -> Dict[str, Any]:
    """Return an OpenAI ``chat.completion`` for a native non-streamed chat reply.

    :param forced: the forced tool choice the request was sent with
        (:func:`chat_forced_tool`): the content is that call's JSON, and
        becomes the one tool call of the reply.
    """
    message = native.get("message") or {}
    content = message.get("content") or ""
    if forced is not None:
        name, arguments = forced_reply_to_call(content, forced,
                                               truncated=native.get("done_reason") == "length")
        calls = [forced_call(completion_id, name, arguments)]
        content = ""
    else:
        native_calls = message.get("tool_calls") or []
        if not parallel_tool_calls:
            native_calls = native_calls[:1]
        calls = [ollama_tool_call_to_openai(call, k, completion_id)
                 for k, call in enumerate(native_calls)]
    out_message = {"role": "assistant", "content": content if content or not calls else None,
                   "refusal": None}  # type: Dict[str, Any]
    if calls:
        out_message["tool_calls"] = calls
    if message.get("thinking") and reasoning_field != "none":
        out_message[reasoning_field] = message["thinking"]
    choice = {"index": 0, "message": out_message,
              "logprobs": ollama_logprobs_to_openai(native.get("logprobs")),
              "finish_reason": finish_reason(native.get("done_reason"), bool(calls))}
    return {"id": completion_id, "object": "chat.completion",
            "created": ollama_created(native, created),
            "model": model, "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [choice], "usage": _usage(native)}
