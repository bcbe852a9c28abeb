"""Thin views that parse, validate, translate, call and respond.

Mapping rules live in ``translate``; this module only wires them to HTTP.
"""
import logging
import secrets
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

from flask import Response

from . import observe, schemas, translate
from .blueprint import bp
from .body import json_response, read_json
from .errors import APIError, ModelNotFound, UpstreamError, UpstreamUnavailable
from .state import current as _state
from .stream import SSE_HEADERS, sse_events
from .upstream import OllamaClient

log = logging.getLogger(__name__)


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
                     translator: Any, headers: Dict[str, str],
                     on_close: Optional[Callable[[], None]] = None) -> Response:
    """Return the SSE response relaying a native stream through ``translator``.

    :param on_close: called after the upstream is released, however the stream ended.
    """
    state = _state()
    # Opened before the Response exists, so a failure within the header
    # wait (unknown model, Ollama down) is still a plain JSON error with
    # its real status; a cold model load past it gets keep-alives instead.
    idle = state.settings.sse_keepalive
    upstream = client.start_stream(path, native, background=idle is not None)
    upstream.wait(state.settings.stream_header_wait)
    def close() -> None:
        upstream.close()
        if on_close is not None:
            on_close()
    return Response(sse_events(upstream.batches(idle), translator, close, observe.stream_meter()),
                    headers=dict(headers, **SSE_HEADERS))


def _include_usage(openai_req: Dict[str, Any]) -> bool:
    return bool(openai_req.get("stream_options", {}).get("include_usage", False))


@bp.route("/chat/completions", methods=["POST"])
def chat_completions() -> Response:
    observe.begin()
    state = _state()
    openai_req = read_json("chat_completions.request")
    route = observe.route(openai_req["model"], openai_req.get("stream", False))
    native = translate.openai_chat_to_ollama(openai_req, route.ollama_model,
                                             num_ctx=state.num_ctx(route.ollama_model),
                                             keep_alive=state.settings.keep_alive)
    for param, schema in translate.chat_output_schemas(openai_req):
        schemas.check_json_schema(schema, param)
    forced = translate.chat_forced_tool(openai_req)
    headers = _ignored_header(translate.chat_ignored_params(openai_req))
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    reasoning_field = state.settings.reasoning_field
    parallel = openai_req.get("parallel_tool_calls", True)

    if native["stream"]:
        translator = translate.ChatStream(
            completion_id, created, route.name, include_usage=_include_usage(openai_req),
            reasoning_field=reasoning_field, parallel_tool_calls=parallel, forced=forced)
        return _stream_response(route.client, "/api/chat", native, translator, headers)

    completions = [translate.ollama_chat_to_openai(
        route.client.post_json("/api/chat", body), completion_id, created, route.name,
        reasoning_field=reasoning_field, parallel_tool_calls=parallel, forced=forced)
        for body in _choice_bodies(native, openai_req.get("n", 1))]
    result = (completions[0] if len(completions) == 1
              else translate.merge_choices(completions))
    observe.used(result["usage"])
    return json_response(result, headers=headers)


@bp.route("/completions", methods=["POST"])
def completions() -> Response:
    observe.begin()
    state = _state()
    openai_req = read_json("completions.request")
    route = observe.route(openai_req["model"], openai_req.get("stream", False))
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
    observe.used(result["usage"])
    return json_response(result, headers=headers)


@bp.route("/embeddings", methods=["POST"])
def embeddings() -> Response:
    observe.begin()
    state = _state()
    openai_req = read_json("embeddings.request")
    route = observe.route(openai_req["model"])
    native = translate.openai_embeddings_to_ollama(openai_req, route.ollama_model,
                                                   keep_alive=state.settings.keep_alive)
    result = translate.ollama_embeddings_to_openai(
        route.client.post_json("/api/embed", native), route.name, len(native["input"]),
        openai_req.get("encoding_format", "float"))
    observe.used(result["usage"])
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
    observe.begin()
    state = _state()
    hosts, failures = [], []
    for url, client in state.clients.items():
        try:
            hosts.append((url, _native_models(client)))
        except APIError as exc:
            # One host down must not hide the models of the others.
            log.warning("listing models: skipping %s: %s", url, exc.message)
            observe.upstream_failed(url, exc)
            failures.append(exc)
    if failures and not hosts:
        raise failures[0]
    return json_response(state.models.openai_list(hosts))


@bp.route("/models/<path:model>", methods=["GET"])
def retrieve_model(model: str) -> Response:
    if not model.strip() or model != model.strip():
        # Ollama trims names; OpenAI ids never have spaces around them.
        raise ModelNotFound("The model '%s' does not exist." % translate.clip(model),
                            param="model")
    observe.begin()
    route = observe.route(model)
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
