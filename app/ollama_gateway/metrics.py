"""Prometheus metrics (the optional ``prometheus_client`` extra): names, labels, scraping.

The only module that imports ``prometheus_client``, and only when an app is
built with metrics on (never at import time). One :class:`Metrics` per app.

One thing here is process-global by nature, not by choice: in multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR`` set, as ``deploy/gunicorn.conf.py`` does)
``prometheus_client`` decides when it is first imported that every metric
value lives in a per-process file in that directory, and a scrape adds up the
files of all workers. So the values of two apps in one process would land in
the same files; :class:`Metrics` then registers its metrics nowhere and
scrapes with a fresh ``MultiProcessCollector``, as the library documents.
Without the variable each app has a ``CollectorRegistry`` of its own (so
tests and several apps in one process never share a counter).

Metric names (the Grafana dashboard in ``deploy/grafana/`` uses them)::

    ollama_gateway_requests_total{endpoint, model, status, key}
    ollama_gateway_tokens_total{kind="prompt"|"completion", model, key}
    ollama_gateway_request_duration_seconds{endpoint}          histogram
    ollama_gateway_time_to_first_token_seconds{endpoint, model} histogram
    ollama_gateway_streams_in_flight                           gauge (livesum)
    ollama_gateway_upstream_errors_total{host, kind}
    ollama_gateway_build_info{version, python}                 gauge, always 1
"""
import os
import platform
from typing import Any, Optional, Tuple

from .config import ConfigError

#: Seconds; a token can take from tens of milliseconds (a warm model) to
#: minutes (a cold load of a big one), so the buckets span 0.05 s to 5 min.
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
#: The error codes counted as upstream errors (:mod:`.errors`).
UPSTREAM_CODES = frozenset(("upstream_unreachable", "upstream_timeout", "upstream_error",
                            "upstream_busy", "upstream_tls_error"))
INSTALL_HINT = "pip install 'ollama-gateway[metrics]'"


def _prometheus(required: bool) -> Any:
    """Return the ``prometheus_client`` module, or ``None`` if it is missing and not ``required``."""
    try:
        import prometheus_client
        from prometheus_client import multiprocess  # noqa: F401  (used by scrape)
    except ImportError as exc:
        if required:
            raise ConfigError("OLLAMA_GATEWAY_METRICS=on needs prometheus_client: %s"
                              % INSTALL_HINT) from exc
        return None
    return prometheus_client


class Metrics:
    """The gateway's metrics for one app, and their exposition.

    :param multiprocess_dir: ``PROMETHEUS_MULTIPROC_DIR``, or ``None`` for one process.
    """

    def __init__(self, prom: Any, multiprocess_dir: Optional[str], version: str) -> None:
        self._prom = prom
        self.multiprocess_dir = multiprocess_dir
        self.registry = None if multiprocess_dir else prom.CollectorRegistry(auto_describe=True)
        reg = {"registry": self.registry}
        self.requests = prom.Counter(
            "ollama_gateway_requests", "API requests answered, by how they ended.",
            ("endpoint", "model", "status", "key"), **reg)
        self.tokens = prom.Counter(
            "ollama_gateway_tokens", "Tokens Ollama counted (prompt, completion).",
            ("kind", "model", "key"), **reg)
        self.duration = prom.Histogram(
            "ollama_gateway_request_duration_seconds",
            "Seconds from the view's start to the response's end (a stream's last byte).",
            ("endpoint",), buckets=LLM_BUCKETS, **reg)
        self.ttft = prom.Histogram(
            "ollama_gateway_time_to_first_token_seconds",
            "Seconds to the first streamed line, or to the whole reply without streaming.",
            ("endpoint", "model"), buckets=LLM_BUCKETS, **reg)
        self.streams = prom.Gauge(
            "ollama_gateway_streams_in_flight", "Streams being relayed now.",
            multiprocess_mode="livesum", **reg)
        self.upstream_errors = prom.Counter(
            "ollama_gateway_upstream_errors", "Failed calls to Ollama, by host and error code.",
            ("host", "kind"), **reg)
        build = prom.Gauge(
            "ollama_gateway_build_info", "Always 1: the gateway's version and Python's.",
            ("version", "python"), multiprocess_mode="livemax", **reg)
        build.labels(version, platform.python_version()).set(1)

    def scrape(self) -> Tuple[bytes, str]:
        """Return the text exposition of every metric (all workers') and its content type."""
        prom = self._prom
        registry = self.registry
        if registry is None:
            registry = prom.CollectorRegistry()
            prom.multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return prom.generate_latest(registry), prom.CONTENT_TYPE_LATEST


def build_metrics(setting: str, environ: Any, version: str) -> Optional[Metrics]:
    """Return the app's :class:`Metrics`, or ``None`` when they are off.

    :param setting: ``OLLAMA_GATEWAY_METRICS``: ``auto``, ``on`` or ``off``.
    :raises ConfigError: for ``on`` without ``prometheus_client``, or a
        ``PROMETHEUS_MULTIPROC_DIR`` that is no directory.
    """
    if setting == "off":
        return None
    prom = _prometheus(required=setting == "on")
    if prom is None:
        return None
    directory = environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    if directory is not None and not os.path.isdir(directory):
        # prometheus_client would only fail at the first request.
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR=%s is not a directory" % directory)
    return Metrics(prom, directory, version)

