"""Responses API input items -> native chat messages, in order (pure).

Tool calls attach to the assistant turn they belong to and are paired with
their outputs through ``call_id``; reasoning items become the ``thinking`` of
the next assistant message. Every item type is mapped or refused naming
``input[i].type``.
"""
import base64
import binascii
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import InvalidRequest
from .common import clip
from .common import unsupported as _unsupported
from .content import image_b64, tool_arguments

#: Separator between a namespace and its function in the name Ollama sees.
NAMESPACE_SEPARATOR = "__"

_ENCRYPTED_PREFIX = "ogw1."


# -- reasoning round trips -------------------------------------------------------

def encrypt_reasoning(thinking: str) -> str:
    """Return the ``encrypted_content`` that brings ``thinking`` back in a later turn.

    Nothing secret is in it (the text is in the item's content too), so it is
    compressed and encoded, not encrypted: what matters to clients such as
    Codex (``store: false``) is that it round-trips.
    """
    packed = zlib.compress(thinking.encode("utf-8"))
    return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(packed).decode("ascii")


def decrypt_reasoning(token: str) -> Optional[str]:
    """Return the thinking text in an ``encrypted_content`` of ours, else None."""
    if not token.startswith(_ENCRYPTED_PREFIX):
        return None  # another provider's blob: fall back to the item's text
    try:
        return zlib.decompress(base64.urlsafe_b64decode(token[len(_ENCRYPTED_PREFIX):]),
                               bufsize=4096).decode("utf-8")
    except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError):
        return None


# -- input items -------------------------------------------------------------------

_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text")


def _content_parts(content: Any, role: str) -> List[Dict[str, Any]]:
    """Return message content as a part list (a plain string becomes one text part).

    ``output_text`` parts get the ``annotations`` and ``logprobs`` lists that
    clients may leave out but an OpenAI item listing always carries.
    """
    if isinstance(content, str):
        content = [{"type": "output_text" if role == "assistant" else "input_text",
                    "text": content}]
    return [dict({"annotations": [], "logprobs": []}, **part)
            if part.get("type") == "output_text" else part for part in content]


def _text_and_images(parts: Sequence[Dict[str, Any]], param: str,
                     images_allowed: bool = True) -> Tuple[str, List[str]]:
    """Return the joined text and the base64 images of message or tool-output parts."""
    texts, images = [], []
    for j, part in enumerate(parts):
        kind = part.get("type")
        where = "%s[%d]" % (param, j)
        if kind in _TEXT_PARTS:
            texts.append(part.get("text", ""))
        elif kind == "refusal":
            texts.append(part.get("refusal", ""))
        elif kind == "input_image" and images_allowed:
            if not part.get("image_url"):
                raise _unsupported("Images by 'file_id' are not supported; send the image inline "
                                   "as a base64 data URL in 'image_url'.", where + ".file_id")
            images.append(image_b64(part["image_url"], where + ".image_url"))
        elif kind == "input_file":
            raise _unsupported("File inputs are not supported by Ollama.", where + ".type")
        else:
            raise _unsupported("Content parts of type '%s' are not supported here." % clip(kind),
                               where + ".type")
    # One native string per message, parts separated by a blank line (as chat).
    return "\n\n".join(texts), images


def normalise(item: Dict[str, Any], new_id: Callable[[str], str]) -> Dict[str, Any]:
    """Return an input item in its full form (``type``, ``id``), as input_items lists it."""
    kind = item.get("type", "message")
    out = dict(item, type=kind)
    if kind == "message":
        out["content"] = _content_parts(item["content"], item["role"])
        out.setdefault("status", "completed")
    prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
              "custom_tool_call": "ctc", "custom_tool_call_output": "ctco",
              "reasoning": "rs"}.get(kind)
    if prefix is not None and not out.get("id"):
        out["id"] = new_id(prefix)
    return out


class History:
    """Builds native messages from items in order, pairing tool calls with outputs."""

    def __init__(self, tools_by_client_name: Dict[Tuple[Optional[str], str], str]) -> None:
        self.messages = []  # type: List[Dict[str, Any]]
        self._thinking = ""
        self._calls = {}  # type: Dict[str, str]  # call_id -> native function name
        self._native_name = tools_by_client_name

    def _assistant(self, fresh: bool) -> Dict[str, Any]:
        """Return the assistant message tool calls attach to (a new one if ``fresh``)."""
        if fresh or not self.messages or self.messages[-1]["role"] != "assistant":
            self.messages.append({"role": "assistant", "content": ""})
        message = self.messages[-1]
        if self._thinking:
            message["thinking"] = message.get("thinking", "") + self._thinking
            self._thinking = ""
        return message

    def add(self, item: Dict[str, Any], param: str) -> None:
        kind = item["type"]
        if kind == "message":
            self._message(item, param)
        elif kind in ("function_call", "custom_tool_call"):
            namespace = item.get("namespace")
            native_name = self._native_name.get((namespace, item["name"])) or (
                namespace + NAMESPACE_SEPARATOR + item["name"] if namespace else item["name"])
            if kind == "function_call":
                arguments = tool_arguments(item["arguments"], param + ".arguments")
            else:
                arguments = {"input": item["input"]}
            message = self._assistant(fresh=False)
            calls = message.setdefault("tool_calls", [])
            calls.append({"id": item["call_id"], "function": {
                "index": len(calls), "name": native_name, "arguments": arguments}})
            self._calls[item["call_id"]] = native_name
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = item["call_id"]
            if call_id not in self._calls:
                raise InvalidRequest("No tool call found for %s with call_id '%s'."
                                     % (kind, clip(call_id)), param=param + ".call_id",
                                     code="invalid_value")
            output = item["output"]
            text, images = (output, []) if isinstance(output, str) else _text_and_images(
                output, param + ".output")
            native = {"role": "tool", "content": text, "tool_name": self._calls[call_id],
                      "tool_call_id": call_id}  # type: Dict[str, Any]
            if images:
                native["images"] = images
            self.messages.append(native)
        elif kind == "reasoning":
            # Ollama keeps thinking on the assistant message it preceded.
            self._thinking += _reasoning_text(item)
        else:
            raise _unsupported("Input items of type '%s' are not supported by this gateway."
                               % clip(kind), param + ".type")

    def _message(self, item: Dict[str, Any], param: str) -> None:
        role = item["role"]
        parts = item["content"]
        if role in ("system", "developer"):
            # Native chat templates know "system"; "developer" is OpenAI's new name for it.
            text, _ = _text_and_images(parts, param + ".content", images_allowed=False)
            self.messages.append({"role": "system", "content": text})
        elif role == "user":
            text, images = _text_and_images(parts, param + ".content")
            native = {"role": "user", "content": text}  # type: Dict[str, Any]
            if images:
                native["images"] = images
            self.messages.append(native)
        elif role == "assistant":
            text, _ = _text_and_images(parts, param + ".content", images_allowed=False)
            message = self._assistant(fresh=True)
            message["content"] = text
        else:
            raise _unsupported("Messages with role '%s' are not supported." % clip(role),
                               param + ".role")


def _reasoning_text(item: Dict[str, Any]) -> str:
    """Return the thinking a reasoning item carries: ours encrypted, else its text."""
    token = item.get("encrypted_content")
    if isinstance(token, str):
        thinking = decrypt_reasoning(token)
        if thinking is not None:
            return thinking
    parts = item.get("content") or item.get("summary") or ()
    return "\n\n".join(part.get("text", "") for part in parts if isinstance(part, dict))
