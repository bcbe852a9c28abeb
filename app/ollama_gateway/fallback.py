"""Unknown paths and wrong methods under the prefix, answered in OpenAI's shape.

Routing errors never reach a blueprint's error handlers: werkzeug raises them
before any view is chosen, so the host app's (often HTML) pages would answer.
A catch-all route under the prefix answers them instead.
"""
import difflib
from typing import Optional, Tuple

from flask import Flask, Response, request

from .blueprint import bp
from .body import error_response
from .errors import APIError, MethodNotAllowed, NotFound

#: (method, path under the prefix) of every endpoint, as listed in 404 messages.
ENDPOINTS = (("POST", "chat/completions"), ("POST", "completions"), ("POST", "embeddings"),
             ("POST", "responses"), ("GET", "responses/{id}"), ("DELETE", "responses/{id}"),
             ("GET", "responses/{id}/input_items"), ("POST", "responses/{id}/cancel"),
             ("GET", "models"), ("GET", "models/{model}"), ("GET", "healthz"), ("GET", "readyz"))
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _matches(endpoint: str, path: str) -> bool:
    """Return whether ``path`` is an instance of ``endpoint`` (``{model}`` spans slashes)."""
    if "{" not in endpoint:
        return path == endpoint
    head, _, rest = endpoint.partition("{")
    tail = rest.partition("}")[2]
    if not path.startswith(head) or not path.endswith(tail) or len(path) <= len(head + tail):
        return False
    middle = path[len(head):len(path) - len(tail)]
    return endpoint.endswith("{model}") or "/" not in middle


def _allowed_methods(path: str) -> Optional[str]:
    """Return the methods the endpoint at ``path`` takes (``"GET, DELETE"``), or None."""
    methods = [method for method, endpoint in ENDPOINTS if _matches(endpoint, path)]
    return ", ".join(methods) if methods else None


def _suggestion(path: str) -> Optional[Tuple[str, str]]:
    """Return the endpoint a mistyped or mis-prefixed ``path`` most likely meant."""
    statics = sorted((e for e in ENDPOINTS if "{" not in e[1]), key=lambda e: -len(e[1]))
    clean = path.strip("/")
    for method, endpoint in statics:
        # A base URL missing /v1, or with it twice, leaves the endpoint at the end.
        if clean.endswith("/" + endpoint) or clean == endpoint:
            return method, endpoint
    for prefix in ("models/", "responses/"):
        if prefix in clean:
            return next(e for e in ENDPOINTS if e[1].startswith(prefix))
    close = difflib.get_close_matches(clean, [e for _, e in statics], n=1, cutoff=0.6)
    return next(e for e in statics if e[1] == close[0]) if close else None


def not_found(path: str, base: str) -> APIError:
    """Return the 404 for ``path`` (relative to ``base``, which ends with ``/``)."""
    supported = "under %s: %s" % (base, ", ".join("%s %s" % (m, e) for m, e in ENDPOINTS))
    guess = _suggestion(path)
    hint = " Did you mean %s %s%s?" % (guess[0], base, guess[1]) if guess else ""
    return NotFound("Invalid URL (%s %s).%s Supported routes %s."
                    % (request.method, request.script_root + request.path, hint, supported),
                    code="unknown_url")


def _unknown(path: str, base: str) -> Response:
    allowed = _allowed_methods(path)
    if allowed is None or path.endswith("/"):
        return error_response(not_found(path, base))
    error = MethodNotAllowed("Method %s is not allowed on %s%s; use %s."
                             % (request.method, base, path, allowed),
                             code="method_not_allowed")
    response = error_response(error)
    response.headers["Allow"] = allowed + (", HEAD" if "GET" in allowed else "") + ", OPTIONS"
    return response


@bp.route("/", defaults={"path": ""}, methods=_ANY_METHOD, strict_slashes=False)
@bp.route("/<path:path>", methods=_ANY_METHOD)
def unknown_route(path: str) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "/"
    prefix = rule.split("<", 1)[0].rstrip("/") + "/"
    return _unknown(path, request.script_root + prefix)


def register_fallback(app: Flask, url_prefix: str = "/v1") -> None:
    """Answer every path of ``app`` outside the API with the OpenAI-shaped 404.

    Only for an app the gateway owns (``create_app``): a host app's pages
    stay its own.
    """
    base = url_prefix.rstrip("/") + "/"

    def fallback(path: str) -> Response:
        return error_response(not_found(path, request.script_root + base))

    app.add_url_rule("/", "ollama_gateway_fallback", fallback, defaults={"path": ""},
                     methods=_ANY_METHOD)
    app.add_url_rule("/<path:path>", "ollama_gateway_fallback", fallback, methods=_ANY_METHOD)
