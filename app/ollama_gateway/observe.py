"""What each API request did: one usage log line, and the Prometheus metrics.

A view opens a :class:`Usage` record with :func:`begin`, names its model with
:func:`route` and, without streaming, hands over the reply's usage with
:func:`used`. The record ends exactly once: for a plain response in the
blueprint's ``after_request`` hook (:func:`after_request`), for a stream when
its generator closes (:mod:`.stream` calls the record's ``ended``), however
that happens: finished, an upstream error mid-stream, or the client gone.

Ending writes one JSON line on the logger ``ollama_gateway.usage`` (at INFO;
nothing is built when that level is off) and, when metrics are on, updates
:mod:`.metrics`. The line holds names, counts and times, never prompt or
completion text and never a key: a key appears as ``key-<first 8 hex digits
of its SHA-256>``, or ``anonymous`` when the gateway has no keys. Fields::

    time               RFC 3339 UTC, when the view started
    request_id         the X-Request-Id answered
    key                anonymous | key-1a2b3c4d | unauthenticated (a 401)
    endpoint           the view: chat_completions, completions, embeddings, create_response...
    model              the model as the client asked (cut to 200 characters); null if none
    ollama_model       the model as sent to Ollama; null if never routed
    upstream           the Ollama base URL; null if never routed
    status             the HTTP status (200 for a stream whatever happened after)
    stream             whether the client asked for a stream
    prompt_tokens      Ollama's counts, the same numbers as the response's usage
    completion_tokens
    time_to_first_token  seconds to the first streamed line, or to the whole reply
    duration           seconds from the view's start to the end of the response
    error_code         null, the error body's code (or type), or client_disconnected

Label values stay bounded: ``model`` is the configured spelling of a name the
gateway knows (an alias, an allowed model, a model with its own upstream),
else ``other`` (``none`` when no model was named); ``key`` as in the log.
"""
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional

from flask import Response, g, request

from . import state
from .errors import APIError
from .metrics import UPSTREAM_CODES, Metrics
from .translate import clip
from .translate.models import canonical_model

log = logging.getLogger("ollama_gateway.usage")

_G_KEY = "ollama_gateway_usage"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".%03dZ" % (
        int(seconds * 1000) % 1000)


class Observer:
    """The per-app part: metrics (or ``None``), key and model label tables."""

    def __init__(self, metrics: Optional[Metrics], keys: FrozenSet[str],
                 known_models: Iterable[str]) -> None:
        self.metrics = metrics
        #: key -> its label; only configured keys, so labels stay bounded.
        self.key_labels = {key: "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
                           for key in keys}
        #: canonical model name -> the spelling the operator configured.
        self.known_models = {canonical_model(name): name for name in known_models}

    def key_label(self, authorization: Optional[str]) -> str:
        """Return the label of the key in an ``Authorization`` header."""
        if not self.key_labels:
            return "anonymous"
        scheme, _, given = (authorization or "").partition(" ")
        found = self.key_labels.get(given.strip()) if scheme.lower() == "bearer" else None
        return found or "unauthenticated"

    def model_label(self, model: Optional[str]) -> str:
        """Return the metric label for a client's model name."""
        if model is None:
            return "none"
        return self.known_models.get(canonical_model(model), "other")


class Usage:
    """One request's record; the stream generator calls the methods without a request context."""

    __slots__ = ("observer", "wall", "start", "request_id", "key", "endpoint", "model",
                 "ollama_model", "upstream", "status", "stream", "prompt_tokens",
                 "completion_tokens", "first", "error_code", "deferred", "counted_done",
                 "open")

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.wall = time.time()
        self.start = time.perf_counter()
        self.request_id = g.get("ollama_gateway_request_id", "")
        self.key = observer.key_label(request.headers.get("Authorization"))
        endpoint = request.endpoint or ""
        self.endpoint = endpoint.rpartition(".")[2] or "unknown"
        self.model = None  # type: Optional[str]
        self.ollama_model = None  # type: Optional[str]
        self.upstream = None  # type: Optional[str]
        self.status = 200
        self.stream = False
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.first = None  # type: Optional[float]
        self.error_code = None  # type: Optional[str]
        #: True once a stream owns the ending (the hook then leaves it alone).
        self.deferred = False
        self.counted_done = False
        self.open = True

    # -- the stream generator's side (see stream.sse_events) ------------------------

    def started(self) -> None:
        """The stream's generator runs: one stream more in flight."""
        if self.observer.metrics is not None:
            self.observer.metrics.streams.inc()

    def first_line(self) -> None:
        """The first native line arrived."""
        self.first = time.perf_counter()

    def counted(self, native: Dict[str, Any]) -> None:
        """Take the token counts of the native final object (as ``usage`` is built from it)."""
        self.prompt_tokens = native.get("prompt_eval_count") or 0
        self.completion_tokens = native.get("eval_count") or 0
        self.counted_done = True

    def failed(self, exc: APIError) -> None:
        """The stream ended with an error event."""
        self.error_code = exc.code or exc.type

    def ended(self) -> None:
        """The stream is over: write its line (a stream that neither finished
        nor failed lost its client)."""
        if self.error_code is None and not self.counted_done:
            self.error_code = "client_disconnected"
        if self.observer.metrics is not None:
            self.observer.metrics.streams.dec()
        self.finish()

    # -- the end ------------------------------------------------------------------

    def finish(self) -> None:
        """Write the usage line and update the metrics, once."""
        if not self.open:
            return
        self.open = False
        end = time.perf_counter()
        if log.isEnabledFor(logging.INFO):
            fields = self.fields(end)
            log.info(_dumps(fields), extra={"usage": fields})
        metrics = self.observer.metrics
        if metrics is not None:
            self._count(metrics, end)

    def fields(self, end: float) -> Dict[str, Any]:
        """Return the usage line's fields."""
        return {
            "time": _rfc3339(self.wall), "request_id": self.request_id, "key": self.key,
            "endpoint": self.endpoint, "model": self.model, "ollama_model": self.ollama_model,
            "upstream": self.upstream, "status": self.status, "stream": self.stream,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "time_to_first_token": None if self.first is None else round(
                self.first - self.start, 6),
            "duration": round(end - self.start, 6), "error_code": self.error_code}

    def _count(self, metrics: Metrics, end: float) -> None:
        model = self.observer.model_label(self.model)
        metrics.requests.labels(self.endpoint, model, str(self.status), self.key).inc()
        if self.prompt_tokens:
            metrics.tokens.labels("prompt", model, self.key).inc(self.prompt_tokens)
        if self.completion_tokens:
            metrics.tokens.labels("completion", model, self.key).inc(self.completion_tokens)
        metrics.duration.labels(self.endpoint).observe(end - self.start)
        if self.first is not None:
            metrics.ttft.labels(self.endpoint, model).observe(self.first - self.start)
        if self.upstream is not None and self.error_code in UPSTREAM_CODES:
            metrics.upstream_errors.labels(self.upstream, self.error_code).inc()


# -- what the views call ----------------------------------------------------------

def _record() -> Usage:
    rec = g.get(_G_KEY)
    if rec is None:
        rec = Usage(state.current().observer)
        setattr(g, _G_KEY, rec)
    return rec


def begin() -> None:
    """Open the request's record: its duration counts from here."""
    _record()


def route(model: str, stream: bool = False) -> state.Route:
    """Return where a request for ``model`` goes, noting it in the record.

    :raises ModelNotFound: as :meth:`.state.GatewayState.route` (noted first).
    """
    rec = _record()
    rec.model = clip(model)
    rec.stream = bool(stream)
    found = state.current().route(model)
    rec.ollama_model, rec.upstream = found.ollama_model, found.client.base_url
    return found


def used(usage: Optional[Mapping[str, Any]]) -> None:
    """Note a finished reply's ``usage`` (chat, completions, embeddings or Responses shape).

    The reply time is the time to first token of a request without streaming.
    """
    rec = _record()
    rec.first = time.perf_counter()
    usage = usage or {}  # a log line must never cost the client its answer
    rec.prompt_tokens = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    rec.completion_tokens = usage.get("completion_tokens", usage.get("output_tokens", 0))


def upstream_failed(host: str, exc: APIError) -> None:
    """Count a failed call to one host that did not end the request (a model list, say)."""
    metrics = _record().observer.metrics
    if metrics is not None and exc.code in UPSTREAM_CODES:
        metrics.upstream_errors.labels(host, exc.code).inc()


def stream_meter() -> Usage:
    """Return the record for a stream about to be returned: the stream now owns its ending."""
    rec = _record()
    rec.deferred = True
    return rec


def after_request(response: Response, skip: FrozenSet[str]) -> Response:
    """End the record of a plain response (the blueprint's hook); streams end themselves.

    :param skip: endpoints not recorded (health probes come every few seconds
        and say nothing about usage); CORS preflights are not recorded either.
    """
    if request.method == "OPTIONS" or request.endpoint in skip:
        return response
    rec = _record()
    if rec.deferred:
        return response
    rec.status = response.status_code
    if rec.status >= 400:
        rec.error_code = _error_code(response)
    rec.finish()
    return response


def _error_code(response: Response) -> Optional[str]:
    """Return the code (else the type) of one of our error bodies."""
    try:
        error = json.loads(response.get_data())["error"]
        return error.get("code") or error.get("type")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def metrics_view() -> Response:
    """Return the Prometheus text exposition of the gateway's metrics.

    ``create_app`` serves it at ``GET /metrics``; a host app mounts it where it
    likes: ``app.add_url_rule("/metrics", view_func=ollama_gateway.observe.metrics_view)``.
    With ``OLLAMA_GATEWAY_METRICS_KEY`` set, it asks for ``Authorization: Bearer <key>``.

    .. versionadded:: 0.2
    """
    current = state.current()
    metrics = current.observer.metrics
    if metrics is None:
        return Response("metrics are off (OLLAMA_GATEWAY_METRICS)\n", status=404,
                        mimetype="text/plain")
    wanted = current.settings.metrics_key
    if wanted is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8"), wanted.encode("utf-8")):
            return Response("a bearer key is needed\n", status=401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body, content_type = metrics.scrape()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
