"""Unknown paths, wrong methods and every OPTIONS under the prefix, in OpenAI's shape.

Routing errors never reach a blueprint's error handlers: werkzeug raises them
before any view is chosen, so the host app's (often HTML) pages would answer.
A catch-all route under the prefix answers them instead. Its converter takes
any character: werkzeug's ``path`` stops at a newline, and such a path fell
through to the host's pages.

OPTIONS is answered here, from :data:`ENDPOINTS`, before any view: Flask's
automatic answer lists the methods of every rule matching the path, and the
catch-all, which must take OPTIONS for unknown paths, takes every method.

Client input echoed in a message goes through :func:`shown`: control
characters escaped, at most :data:`MAX_ECHO` characters.
"""
import difflib
import unicodedata
from typing import List, Optional, Tuple

from flask import Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import PathConverter

from . import cors, state
from .blueprint import bp, cors_preflight
from .body import error_response
from .errors import APIError, MethodNotAllowed, NotFound

#: (method, path under the prefix) of every endpoint, as listed in 404 messages.
ENDPOINTS = (("POST", "chat/completions"), ("POST", "completions"), ("POST", "embeddings"),
             ("POST", "responses"), ("GET", "responses/{id}"), ("DELETE", "responses/{id}"),
             ("GET", "responses/{id}/input_items"), ("POST", "responses/{id}/cancel"),
             ("GET", "models"), ("GET", "models/{model}"), ("GET", "healthz"), ("GET", "readyz"))
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

#: The most characters of one client value (a path, a method) a message repeats.
MAX_ECHO = 200
#: Unicode categories shown escaped: controls (CR, LF, NUL, DEL, C1), format
#: characters (bidi overrides that reorder a log line) and line separators.
_ESCAPED = frozenset(("Cc", "Cf", "Zl", "Zp"))

#: The catch-all's converter, under a name of ours in the app's ``url_map``.
CONVERTER = "ollama_gateway_path"


class AnyPathConverter(PathConverter):
    """werkzeug's ``path``, taking newlines and empty segments (``//``) too.

    werkzeug's ``.`` stops at ``\\n``. An empty segment would get the host
    map's merge-slashes redirect, an HTML page SDKs do not follow; our 404
    names the route instead, as the standalone app does.
    """

    regex = "[\\s\\S]+?"
    # Said outright: werkzeug infers it from a "/" in ``regex``, which has none.
    part_isolating = False


@bp.record_once
def _add_converter(setup: BlueprintSetupState) -> None:
    # werkzeug looks converters up in the app's map only; a blueprint cannot
    # bring its own. A new name changes none of the host's converters or rules.
    # Recorded before the routes below, whose rules need it when they are added.
    converters = setup.app.url_map.converters
    if converters.setdefault(CONVERTER, AnyPathConverter) is not AnyPathConverter:
        raise RuntimeError("The app already has a URL converter named %r." % CONVERTER)


def _escaped(value: str, limit: int) -> Tuple[str, bool]:
    """Return ``value`` with control characters escaped, at most ``limit`` long, and
    whether it had to be cut (an escape goes whole or not at all)."""
    out = []  # type: List[str]
    size = 0
    for char in value:
        piece = "\\\\" if char == "\\" else (
            char.encode("unicode_escape").decode("ascii")
            if unicodedata.category(char) in _ESCAPED else char)
        if size + len(piece) > limit:
            return "".join(out), True
        out.append(piece)
        size += len(piece)
    return "".join(out), False


def shown(value: str, limit: int = MAX_ECHO) -> str:
    """Return ``value`` fit for a message: control characters escaped, cut after ``limit``.

    Escaped, because a message is printed and logged: a CR/LF would start a
    forged line. The backslash is escaped too, so ``\\n`` stays unambiguous.
    """
    text, cut = _escaped(value, limit)
    return text + "\u2026" if cut else text


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


def _allowed_methods(path: str) -> List[str]:
    """Return the methods the endpoint at ``path`` takes, HEAD and OPTIONS included."""
    methods = []  # type: List[str]
    for method, endpoint in ENDPOINTS:
        if _matches(endpoint, path):
            # werkzeug answers HEAD wherever GET is routed, Flask OPTIONS everywhere.
            methods.extend(("GET", "HEAD") if method == "GET" else (method,))
    return methods + ["OPTIONS"] if methods else []


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
    guess = _suggestion(path)
    hint = " Did you mean %s %s%s?" % (guess[0], base, guess[1]) if guess else ""
    echoed, cut = _escaped(request.script_root + request.path, MAX_ECHO)
    # A path cut short is no typo of a route; the list would only double the message.
    supported = "" if cut else " Supported routes under %s: %s." % (
        base, ", ".join("%s %s" % (m, e) for m, e in ENDPOINTS))
    return NotFound("Invalid URL (%s %s%s).%s%s" % (shown(request.method), echoed,
                                                    "\u2026" if cut else "", hint, supported),
                    code="unknown_url")


def _unknown(path: str, base: str) -> Response:
    """Return the 404 or 405 for a request no route took."""
    allowed = _allowed_methods(path)
    # A method the endpoint takes, yet no route matched: the path itself is
    # wrong (a trailing slash, a newline in a model name).
    if not allowed or path.endswith("/") or request.method in allowed:
        return error_response(not_found(path, base))
    error = MethodNotAllowed("Method %s is not allowed on %s; use %s."
                             % (shown(request.method), shown(base + path),
                                ", ".join(m for m in allowed if m not in ("HEAD", "OPTIONS"))),
                             code="method_not_allowed")
    response = error_response(error)
    response.headers["Allow"] = ", ".join(allowed)
    return response


def _under_prefix() -> Tuple[str, str]:
    """Return the prefix as the client sees it (ends with ``/``) and the path under it."""
    # The catch-all's rule starts with the prefix this app mounted the blueprint at.
    rule = next(current_app.url_map.iter_rules(request.blueprint + "." + unknown_route.__name__))
    prefix = rule.rule.split("<", 1)[0].rstrip("/") + "/"
    return request.script_root + prefix, request.path[len(prefix):]


@bp.before_request
def _options() -> Optional[Response]:
    """Return the answer to an OPTIONS request, the one place that gives it."""
    if request.method != "OPTIONS":
        return None
    base, path = _under_prefix()
    # Reaching the catch-all means no route serves this path (every route takes OPTIONS).
    caught = request.endpoint == request.blueprint + "." + unknown_route.__name__
    allowed = [] if caught else _allowed_methods(path)
    if not allowed:
        return error_response(not_found(path, base))
    # Empty and 200, as Flask's automatic OPTIONS answers; a CORS preflight gets
    # 204, and the preflight headers if its origin is allowed (blueprint._add_cors
    # adds the origin itself).
    response = current_app.response_class()
    response.headers["Allow"] = ", ".join(allowed)
    if cors_preflight():
        response.status_code = 204
        if cors.allowed_origin(request.headers.get("Origin"),
                               state.current().settings.cors_origins):
            response.headers.update(cors.preflight_headers(allowed))
    return response


@bp.route("/", defaults={"path": ""}, methods=_ANY_METHOD, strict_slashes=False)
@bp.route("/<%s:path>" % CONVERTER, methods=_ANY_METHOD)
def unknown_route(path: str) -> Response:
    """Answer what no other route of the blueprint takes."""
    return _unknown(path, _under_prefix()[0])


def register_fallback(app: Flask, url_prefix: str = "/v1") -> None:
    """Answer every path of ``app`` outside the API with the OpenAI-shaped 404.

    Only for an app the gateway owns (``create_app``), after ``init_app``
    (which adds the converter): a host app's pages stay its own.
    """
    base = url_prefix.rstrip("/") + "/"

    def fallback(path: str) -> Response:
        return error_response(not_found(path, request.script_root + base))

    app.add_url_rule("/", "ollama_gateway_fallback", fallback, defaults={"path": ""},
                     methods=_ANY_METHOD)
    app.add_url_rule("/<%s:path>" % CONVERTER, "ollama_gateway_fallback", fallback,
                     methods=_ANY_METHOD)
