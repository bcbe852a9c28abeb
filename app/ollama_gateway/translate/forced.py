"""Forced tool calls (``tool_choice`` required or named) by constrained decoding.

Ollama cannot force a tool call: with native ``tools`` the model may always
answer in prose. It can force the *shape* of the reply with ``format`` (a JSON
Schema turned into a grammar), so a forced choice is sent without native
tools, with ``format`` set to what the call must look like, and the JSON reply
is turned back into a tool call here.

Endpoint-agnostic: functions come in flat (``{"name", "description"?,
"parameters"?}``), as the Responses API defines them; chat unwraps its
``{"type": "function", "function": {...}}`` entries first.

.. versionadded:: 0.2
"""
import json
import re
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple

from ..errors import InvalidRequest, UpstreamError
from .common import clip

MISMATCH = "Ollama's reply does not match the forced tool's schema."

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What a reply constrained to the several-functions schema starts with; the
# grammar writes properties in schema order, so "name" comes first.
_TAGGED_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:', re.S)


class ForcedTool(NamedTuple):
    """What a forced tool choice sends to Ollama and how its reply reads back.

    .. versionadded:: 0.2
    """

    #: The functions the reply may call; one for a named choice.
    names: Tuple[str, ...]
    #: Native ``format``: the JSON Schema the reply must match.
    format: Dict[str, Any]
    #: System text telling the model what to produce.
    instruction: str


def _parameters(function: Dict[str, Any]) -> Dict[str, Any]:
    parameters = function.get("parameters")
    # OpenAI's meaning of a function without parameters: it takes none.
    return parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}


def _describe(function: Dict[str, Any]) -> str:
    lines = ["Function: %s" % function["name"]]
    if function.get("description"):
        lines.append("Description: %s" % function["description"])
    lines.append("Parameters (JSON Schema): %s" % _dumps(_parameters(function)))
    return "\n".join(lines)


def forced_tool(functions: Sequence[Dict[str, Any]], names: Sequence[str]) -> ForcedTool:
    """Return the native ``format`` and instruction that force a call of one of ``names``.

    :param functions: flat definitions ``{"name", "description"?, "parameters"?}``;
        the first of a repeated name wins.
    :param names: the allowed subset, in order (repeats are dropped).
    :raises InvalidRequest: for a name not among ``functions`` (callers that
        know the request's layout check first, to name the exact ``param``).
    """
    by_name = {}  # type: Dict[str, Dict[str, Any]]
    for function in functions:
        by_name.setdefault(function["name"], function)
    chosen = []  # type: List[Dict[str, Any]]
    for name in names:
        if name not in by_name:
            raise InvalidRequest("Invalid value for 'tool_choice': no function named '%s' in "
                                 "'tools'." % clip(name), param="tool_choice", code="invalid_value")
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    if not chosen:
        raise ValueError("forced_tool needs at least one function name")
    described = "\n\n".join(_describe(function) for function in chosen)
    if len(chosen) == 1:
        # One function: the reply is the arguments object itself, so the
        # stream can pass each token on as an arguments delta.
        return ForcedTool(
            (chosen[0]["name"],), _parameters(chosen[0]),
            "Call the function \"%s\": reply with only its arguments, one JSON object that "
            "matches the parameters schema below, and nothing else.\n\n%s"
            % (chosen[0]["name"], described))
    # Tagged with "enum", not "const": older Ollama grammar converters only know enum.
    branches = [{"type": "object",
                 "properties": {"name": {"enum": [function["name"]]},
                                "arguments": _parameters(function)},
                 "required": ["name", "arguments"]} for function in chosen]
    return ForcedTool(
        tuple(function["name"] for function in chosen), {"anyOf": branches},
        "Call exactly one of the functions below: reply with only a JSON object "
        "{\"name\": <the function's name>, \"arguments\": <its arguments object>}, and "
        "nothing else.\n\n%s" % described)


def allowed_tool_names(entries: Sequence[Dict[str, Any]], names: Sequence[str],
                       param: str) -> List[str]:
    """Return the function names an ``allowed_tools`` list gives, each checked against ``names``.

    Entries may be chat's ``{"type": "function", "function": {"name"}}`` or the
    Responses API's flat ``{"type": "function", "name"}``: clients reuse one
    list for both endpoints.

    :param param: where the list is in the request, for the error's ``param``.
    :raises InvalidRequest: for a non-function entry, an unknown name, an empty list.
    """
    chosen = []
    for j, entry in enumerate(entries):
        where = "%s[%d]" % (param, j)
        if entry.get("type") != "function":
            raise InvalidRequest("Tools of type '%s' are not supported by Ollama."
                                 % clip(entry.get("type")), param=where + ".type",
                                 code="unsupported_value")
        nested = isinstance(entry.get("function"), dict)
        name = entry["function"].get("name") if nested else entry.get("name")
        where += ".function.name" if nested else ".name"
        if name not in names:
            raise InvalidRequest("Invalid value for '%s': no function named %s in 'tools'."
                                 % (where, clip(json.dumps(name))), param=where, code="invalid_value")
        chosen.append(name)
    if not chosen:
        raise InvalidRequest("'%s' must name at least one tool." % param, param=param,
                             code="invalid_value")
    return chosen


class JSONCompactor:
    """Drops the whitespace between JSON tokens from text fed in pieces.

    Stateful across pieces (inside a string or not, after a backslash or not),
    so a stream of deltas and the whole text compact to the same string, and
    no piece is held back.
    """

    def __init__(self) -> None:
        self._in_string = False
        self._escaped = False

    def feed(self, text: str) -> str:
        """Return ``text`` without whitespace outside JSON strings."""
        out = []
        for char in text:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in " \t\r\n":
                continue
            out.append(char)
        return "".join(out)


def compact_json(text: str) -> str:
    """Return ``text`` without whitespace between JSON tokens."""
    return JSONCompactor().feed(text)


def forced_reply_to_call(content: str, forced: ForcedTool,
                         truncated: bool = False) -> Tuple[str, str]:
    """Return ``(function name, arguments as compact JSON)`` for a forced reply.

    One function: ``content`` is the arguments object; its text is kept as the
    model wrote it, whitespace between tokens removed, so the streamed deltas
    add up to exactly this string. Several: ``content`` is ``{"name",
    "arguments"}`` and the arguments are re-encoded.

    :param truncated: the reply was cut by the token limit (``done_reason``
        length): as OpenAI does with ``finish_reason`` length, the cut-off text
        comes back as the arguments instead of an error.
    :raises UpstreamError: for a reply that is not JSON of the forced shape.
    """
    several = len(forced.names) > 1
    try:
        value = json.loads(content)
    except ValueError:
        value = None
    if not several and isinstance(value, dict):
        return forced.names[0], compact_json(content)
    if (several and isinstance(value, dict) and value.get("name") in forced.names
            and isinstance(value.get("arguments"), dict)):
        return value["name"], _dumps(value["arguments"])
    if not truncated:
        raise UpstreamError(MISMATCH)
    if several:
        # Cut off: the name is known if the reply got past it.
        head = _TAGGED_HEAD.match(content)
        name = json.loads(head.group(1)) if head else None
        if name in forced.names:
            return name, compact_json(content[head.end():])
    return forced.names[0], compact_json(content)


def with_instruction(native_messages: List[Dict[str, Any]],
                     instruction: str) -> List[Dict[str, Any]]:
    """Return native messages with ``instruction`` as a system message after the leading ones."""
    # Right after the client's own system messages: its prompt stays first,
    # where templates and models weigh it most (and its cached prompt prefix
    # still matches), and the instruction stays out of the user/assistant
    # turns, which some chat templates require to alternate.
    lead = 0
    while lead < len(native_messages) and native_messages[lead].get("role") == "system":
        lead += 1
    return (native_messages[:lead] + [{"role": "system", "content": instruction}]
            + native_messages[lead:])
