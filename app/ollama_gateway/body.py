"""JSON bodies in and out of the views: the request's, read and validated; ours, rendered.

Clients such as LangChain send ``null`` for every unset option; OpenAI treats
that as "not given", and so do we.
"""
import json
from typing import Any, Dict

from flask import Response, request

from . import schemas, state
from .errors import APIError, InvalidRequest, RequestTooLarge

_JSON = "application/json"


def json_response(body: Dict[str, Any], status: int = 200, headers: Any = None) -> Response:
    """Return a JSON response (compact, UTF-8) without Flask's sorting or pretty-printing."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    status=status, headers=headers, mimetype=_JSON)


def error_response(exc: APIError) -> Response:
    """Return the OpenAI-shaped JSON response for ``exc``."""
    return json_response(exc.to_body(), status=exc.status, headers=exc.headers())


def read_json(schema_name: str) -> Dict[str, Any]:
    """Return the request's JSON object, top-level nulls removed, validated."""
    limit = state.current().settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge("The request body is larger than %d bytes." % limit)
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise RequestTooLarge("The request body is larger than %d bytes." % limit)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.",
                             code="invalid_json")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest("We could not parse the JSON body of your request: %s." % exc,
                             code="invalid_json") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    doc = {key: value for key, value in doc.items() if value is not None}
    schemas.validate(schema_name, doc)
    return doc
