"""The blueprint: thin views that parse, validate, translate, call and respond.

Mapping rules live in ``translate``; this module only wires them to HTTP.
Errors are handled on the blueprint alone, so a host app's own pages and
handlers are left as they are.
"""
import difflib
import json
import logging
import re
import secrets
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from . import access, schemas, translate
from .config import EXTENSION_KEY
from .errors import (APIError, InvalidRequest, MethodNotAllowed, NotFound, RequestTooLarge,
                     UpstreamError, UpstreamUnavailable)
from .stream import SSE_HEADERS, sse_events
from .upstream import OllamaClient

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


def _ignored_header(ignored: List[str]) -> Dict[str, str]:
    """Return the header that lists accepted-but-not-forwarded fields, if any."""
    return {"X-Gateway-Ignored-Params": ", ".join(ignored)} if ignored else {}


def _choice_bodies(native: Dict[str, Any], n: int) -> Iterator[Dict[str, Any]]:
    """Yield the native bodies for ``n`` choices: n upstream calls.

    An explicit seed is varied per choice, or every choice would be the same text.
    """
    for i in range(n):
        if i and "seed" in native["options"]:
            yield dict(native, options=dict(native["options"], seed=native["options"]["seed"] + i))
        else:
            yield native


def _stream_response(client: OllamaClient, path: str, native: Dict[str, Any],
                     translator: Any, headers: Dict[str, str]) -> Response:
    """Return the SSE response relaying a native stream through ``translator``."""
    state = _state()
    # Opened before the Response exists, so a failure within the header
    # wait (unknown model, Ollama down) is still a plain JSON error with
    # its real status; a cold model load past it gets keep-alives instead.
    idle = state.settings.sse_keepalive
    upstream = client.start_stream(path, native, background=idle is not None)
    upstream.wait(state.settings.stream_header_wait)
    return Response(sse_events(upstream.batches(idle), translator, upstream.close),
                    headers=dict(headers, **SSE_HEADERS))


def _include_usage(openai_req: Dict[str, Any]) -> bool:
    return bool(openai_req.get("stream_options", {}).get("include_usage", False))


@bp.route("/chat/completions", methods=["POST"])
def chat_completions() -> Response:
    state = _state()
    openai_req = read_json("chat_completions.request")
    route = state.route(openai_req["model"])
    native = translate.openai_chat_to_ollama(openai_req, route.ollama_model,
                                             num_ctx=state.num_ctx(route.ollama_model),
                                             keep_alive=state.settings.keep_alive)
    if "format" in native and isinstance(native["format"], dict):
        schemas.check_json_schema(native["format"], "response_format.json_schema.schema")
    headers = _ignored_header(translate.chat_ignored_params(openai_req))
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    reasoning_field = state.settings.reasoning_field
    parallel = openai_req.get("parallel_tool_calls", True)

    if native["stream"]:
        translator = translate.ChatStream(
            completion_id, created, route.name, include_usage=_include_usage(openai_req),
            reasoning_field=reasoning_field, parallel_tool_calls=parallel)
        return _stream_response(route.client, "/api/chat", native, translator, headers)

    completions = [translate.ollama_chat_to_openai(
        route.client.post_json("/api/chat", body), completion_id, created, route.name,
        reasoning_field=reasoning_field, parallel_tool_calls=parallel)
        for body in _choice_bodies(native, openai_req.get("n", 1))]
    result = (completions[0] if len(completions) == 1
              else translate.merge_choices(completions))
    return json_response(result, headers=headers)


@bp.route("/completions", methods=["POST"])
def completions() -> Response:
    state = _state()
    openai_req = read_json("completions.request")
    route = state.route(openai_req["model"])
    native = translate.openai_completion_to_ollama(openai_req, route.ollama_model,
                                                   num_ctx=state.num_ctx(route.ollama_model),
                                                   keep_alive=state.settings.keep_alive)
    headers = _ignored_header(translate.completion_ignored_params(openai_req))
    completion_id = "cmpl-" + secrets.token_hex(12)
    created = int(time.time())
    echo = translate.completion_echo(openai_req)
    logprobs = openai_req.get("logprobs")

    if native["stream"]:
        translator = translate.CompletionStream(
            completion_id, created, route.name, include_usage=_include_usage(openai_req),
            echo=echo, logprobs=logprobs)
        return _stream_response(route.client, "/api/generate", native, translator, headers)

    results = [translate.ollama_completion_to_openai(
        route.client.post_json("/api/generate", body), completion_id, created, route.name,
        echo=echo, logprobs=logprobs)
        for body in _choice_bodies(native, openai_req.get("n", 1))]
    result = results[0] if len(results) == 1 else translate.merge_choices(results)
    return json_response(result, headers=headers)


@bp.route("/embeddings", methods=["POST"])
def embeddings() -> Response:
    state = _state()
    openai_req = read_json("embeddings.request")
    route = state.route(openai_req["model"])
    native = translate.openai_embeddings_to_ollama(openai_req, route.ollama_model,
                                                   keep_alive=state.settings.keep_alive)
    result = translate.ollama_embeddings_to_openai(
        route.client.post_json("/api/embed", native), route.name, len(native["input"]),
        openai_req.get("encoding_format", "float"))
    return json_response(result, headers=_ignored_header(
        translate.embeddings_ignored_params(openai_req)))


def _native_models(client: OllamaClient) -> List[Dict[str, Any]]:
    """Return the entries of one host's ``/api/tags``."""
    body = client.get_json("/api/tags")
    entries = body.get("models") if isinstance(body, dict) else ()
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UpstreamError("Ollama at %s sent an unexpected model list." % client.base_url)
    return [entry for entry in entries if isinstance(entry, dict)]


@bp.route("/models", methods=["GET"])
def list_models() -> Response:
    state = _state()
    hosts, failures = [], []
    for url, client in state.clients.items():
        try:
            hosts.append((url, _native_models(client)))
        except APIError as exc:
            # One host down must not hide the models of the others.
            log.warning("listing models: skipping %s: %s", url, exc.message)
            failures.append(exc)
    if failures and not hosts:
        raise failures[0]
    return json_response(state.models.openai_list(hosts))


@bp.route("/models/<path:model>", methods=["GET"])
def retrieve_model(model: str) -> Response:
    route = _state().route(model)
    shown = route.client.post_json("/api/show", {"model": route.ollama_model})
    return json_response(translate.ollama_model_to_openai(route.name, shown))


# -- health ------------------------------------------------------------------
# Outside the key check, for load balancers and service managers.

@bp.route("/healthz", methods=["GET"])
def healthz() -> Response:
    """The process is up and serving; says nothing about Ollama."""
    return json_response({"status": "ok"})


@bp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    """Every configured Ollama host answers (``/api/version``) within a few seconds."""
    state = _state()
    versions, down = {}, []
    for url, client in state.clients.items():
        try:
            versions[url] = client.get_json("/api/version", read_timeout=5).get("version")
        except APIError as exc:
            down.append("%s (%s)" % (url, exc.message))
    if down:
        raise UpstreamUnavailable("Not ready: Ollama does not answer at %s." % ", ".join(down))
    return json_response({"status": "ready", "ollama": versions})


_OPEN_ENDPOINTS = frozenset((bp.name + ".healthz", bp.name + ".readyz"))


# -- unknown paths and wrong methods -----------------------------------------
# Routing errors never reach a blueprint's error handlers: werkzeug raises them
# before any view is chosen, so the host app's (often HTML) pages would answer.
# A catch-all route under the prefix answers them in OpenAI's shape instead.

#: (method, path under the prefix) of every endpoint, as listed in 404 messages.
ENDPOINTS = (("POST", "chat/completions"), ("POST", "completions"), ("POST", "embeddings"),
             ("GET", "models"), ("GET", "models/{model}"), ("GET", "healthz"), ("GET", "readyz"))
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _allowed_methods(path: str) -> Optional[str]:
    """Return the method an endpoint at ``path`` takes, or None if there is none."""
    for method, endpoint in ENDPOINTS:
        if path == endpoint or (endpoint.endswith("{model}") and
                                path.startswith(endpoint[:-len("{model}")]) and
                                len(path) > len(endpoint) - len("{model}")):
            return method
    return None


def _suggestion(path: str) -> Optional[Tuple[str, str]]:
    """Return the endpoint a mistyped or mis-prefixed ``path`` most likely meant."""
    statics = sorted((e for e in ENDPOINTS if "{" not in e[1]), key=lambda e: -len(e[1]))
    clean = path.strip("/")
    for method, endpoint in statics:
        # A base URL missing /v1, or with it twice, leaves the endpoint at the end.
        if clean.endswith("/" + endpoint) or clean == endpoint:
            return method, endpoint
    if "models/" in clean:
        return "GET", "models/{model}"
    close = difflib.get_close_matches(clean, [e for _, e in statics], n=1, cutoff=0.6)
    return next(e for e in statics if e[1] == close[0]) if close else None


def not_found(path: str, base: str) -> APIError:
    """Return the 404 for ``path`` (relative to ``base``, which ends with ``/``)."""
    supported = ", ".join("%s %s%s" % (m, base, e) for m, e in ENDPOINTS)
    guess = _suggestion(path)
    hint = " Did you mean %s %s%s?" % (guess[0], base, guess[1]) if guess else ""
    return NotFound("Invalid URL (%s %s).%s Supported routes: %s."
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
    response.headers["Allow"] = allowed + (", HEAD" if allowed == "GET" else "") + ", OPTIONS"
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


@bp.before_request
def _check_key() -> None:
    if request.endpoint not in _OPEN_ENDPOINTS:
        access.check_bearer(request.headers.get("Authorization"), _state().keys)


@bp.after_request
def _add_request_id(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("ollama_gateway_request_id", "")
    return response
