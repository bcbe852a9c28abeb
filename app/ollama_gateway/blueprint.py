"""The blueprint every view is registered on, with its error handlers and hooks.

Errors are handled on the blueprint alone, so a host app's own pages and
handlers are left as they are.
"""
import logging
import re
import secrets

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException

from . import access, cors, state
from .body import error_response
from .errors import APIError, InvalidRequest, MethodNotAllowed, NotFound, RequestTooLarge

log = logging.getLogger("ollama_gateway.routes")

bp = Blueprint("ollama_gateway", __name__)

#: Views outside the key check, for load balancers and service managers.
OPEN_ENDPOINTS = frozenset((bp.name + ".healthz", bp.name + ".readyz"))

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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


def cors_preflight() -> bool:
    """Return whether this request is a preflight the CORS settings answer (before any key)."""
    return (state.current().settings.cors_origins is not None
            and cors.is_preflight(request.method, request.headers))


@bp.before_request
def _check_key() -> None:
    # Browsers send a preflight without Authorization; fallback._options answers it.
    if request.endpoint not in OPEN_ENDPOINTS and not cors_preflight():
        access.check_bearer(request.headers.get("Authorization"), state.current().keys)


@bp.after_request
def _add_cors(response: Response) -> Response:
    origins = state.current().settings.cors_origins
    if origins is None:
        return response
    response.vary.add("Origin")
    allow = cors.allowed_origin(request.headers.get("Origin"), origins)
    if allow is not None:
        response.headers.update(cors.response_headers(allow, cors_preflight()))
    return response


@bp.after_request
def _add_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("ollama_gateway_request_id", "")
    return response


@bp.after_request
def _observe(response: Response) -> Response:
    # Imported here so this hook stays the whole change to this module; the
    # import is a dict look-up once the module is loaded.
    from . import observe

    return observe.after_request(response, OPEN_ENDPOINTS)
