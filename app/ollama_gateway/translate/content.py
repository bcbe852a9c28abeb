"""What every chat-like translation shares about message content: inline images and
tool-call arguments, checked before anything goes upstream."""
import base64
import binascii
import json
from typing import Any

from ..errors import InvalidRequest
from .common import clip, unsupported

IMAGE_PREFIXES = ("data:image/png;base64,", "data:image/jpeg;base64,",
                   "data:image/jpg;base64,", "data:image/webp;base64,",
                   "data:;base64,")


def image_b64(url: str, param: str) -> str:
    """Return the raw base64 payload of a data URL, checked to decode."""
    if url.startswith(("http://", "https://")):
        raise unsupported(
            "Image URLs are not supported; send the image inline as a base64 data URL "
            "(data:image/png;base64,...).", param)
    for prefix in IMAGE_PREFIXES:
        if url.startswith(prefix):
            payload = url[len(prefix):]
            if not payload:
                raise InvalidRequest("Invalid image data: the data URL holds no data.",
                                     param=param, code="invalid_value")
            try:
                base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest("Invalid image data: the data URL is not valid base64.",
                                     param=param, code="invalid_value") from None
            return payload
    raise InvalidRequest(
        "Invalid image URL: expected a base64 data URL of a PNG, JPEG or WebP image.",
        param=param, code="invalid_value")


def tool_arguments(raw: str, param: str) -> Any:
    """Return the object a JSON-string ``arguments`` holds (an empty string: ``{}``)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise InvalidRequest("Invalid tool call arguments: not valid JSON.",
                             param=param, code="invalid_value") from None
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid tool call arguments: expected a JSON object.",
                             param=param, code="invalid_value")
    return value
