"""The blueprint: thin views that parse, validate, translate, call and respond.

Mapping rules live in ``translate``; this module only wires them to HTTP.
Errors are handled on the blueprint alone, so a host app's own pages and
handlers are left as they are.
"""
import json
import logging
import re
import secrets
import time
from typing import Any, Dict

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import schemas, translate
from .config import EXTENSION_KEY
from .errors import APIError, InvalidRequest, MethodNotAllowed, NotFound, RequestTooLarge
from .stream import SSE_HEADERS, sse_events

log = logging.getLogger(__name__)

bp = Blueprint("ollama_gateway", __name__)

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JSON = "application/json"


def _state() -> Any:
    return current_app.extensions[EXTENSION_KEY]


def json_response(body: Dict[str, Any], status: int = 200, headers: Any = None) -> Response:
    """Return a JSON response (compact, UTF-8) without Flask's sorting or pretty-printing."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    status=status, headers=headers, mimetype=_JSON)


def read_json(schema_name: str) -> Dict[str, Any]:
    """Return the request's JSON object, top-level nulls removed, validated.

    Clients such as LangChain send ``null`` for every unset option; OpenAI
    treats that as "not given", and so do we.
    """
    limit = _state().settings.max_body_bytes
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


@bp.route("/chat/completions", methods=["POST"])
def chat_completions() -> Response:
    state = _state()
    openai_req = read_json("chat_completions.request")
    model = openai_req["model"]
    native = translate.openai_chat_to_ollama(openai_req, model, num_ctx=state.num_ctx(model),
                                             keep_alive=state.settings.keep_alive)
    if "format" in native and isinstance(native["format"], dict):
        schemas.check_json_schema(native["format"], "response_format.json_schema.schema")
    headers = {}
    ignored = translate.chat_ignored_params(openai_req)
    if ignored:
        headers["X-Gateway-Ignored-Params"] = ", ".join(ignored)
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    reasoning_field = state.settings.reasoning_field
    parallel = openai_req.get("parallel_tool_calls", True)

    if native["stream"]:
        # Opened before the Response exists, so a failure within the header
        # wait (unknown model, Ollama down) is still a plain JSON error with
        # its real status; a cold model load past it gets keep-alives instead.
        idle = state.settings.keepalive_interval
        upstream = state.client.start_stream("/api/chat", native, background=idle is not None)
        upstream.wait(state.settings.stream_header_wait)
        translator = translate.ChatStream(
            completion_id, created, model,
            include_usage=openai_req.get("stream_options", {}).get("include_usage", False),
            reasoning_field=reasoning_field, parallel_tool_calls=parallel)
        headers.update(SSE_HEADERS)
        return Response(sse_events(upstream.batches(idle), translator, upstream.close),
                        headers=headers)

    completions = []
    for i in range(openai_req.get("n", 1)):
        body = native
        if i and "seed" in native["options"]:
            # n > 1 is n upstream calls; an explicit seed is varied per choice,
            # or every choice would be the same text.
            body = dict(native, options=dict(native["options"], seed=native["options"]["seed"] + i))
        completions.append(translate.ollama_chat_to_openai(
            state.client.post_json("/api/chat", body), completion_id, created, model,
            reasoning_field=reasoning_field, parallel_tool_calls=parallel))
    result = completions[0] if len(completions) == 1 else translate.merge_chat_completions(completions)
    return json_response(result, headers=headers)


# -- errors, request ids -----------------------------------------------------

def error_response(exc: APIError) -> Response:
    """Return the OpenAI-shaped JSON response for ``exc``."""
    return json_response(exc.to_body(), status=exc.status, headers=exc.headers())


@bp.errorhandler(APIError)
def _on_api_error(exc: APIError) -> Response:
    return error_response(exc)


@bp.errorhandler(HTTPException)
def _on_http_exception(exc: HTTPException) -> Response:
    # e.g. a host app's MAX_CONTENT_LENGTH (413) or a client disconnect while
    # reading the body (400): same shape as everything else we answer.
    classes = {404: NotFound, 405: MethodNotAllowed, 413: RequestTooLarge}
    error = classes.get(exc.code or 500, InvalidRequest if (exc.code or 500) < 500 else APIError)(
        exc.description or exc.name)
    error.status = exc.code or 500
    return error_response(error)


@bp.errorhandler(Exception)
def _on_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.path)
    return error_response(APIError("The gateway failed to handle this request."))


@bp.before_request
def _request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.ollama_gateway_request_id = given if _SANE_REQUEST_ID.match(given) else (
        "req_" + secrets.token_hex(12))


@bp.after_request
def _add_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("ollama_gateway_request_id", "")
    return response
