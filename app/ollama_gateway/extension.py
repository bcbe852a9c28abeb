"""The Flask extension: ``OllamaGateway(app)`` or ``OllamaGateway().init_app(app)``.

``init_app`` reads the settings once, builds one Ollama client per distinct
upstream URL and the model map (aliases, allow-list, hosts), keeps them in
``app.extensions["ollama_gateway"]``, then registers the blueprint. It
handles no requests itself.
"""
import os
from typing import Any, FrozenSet, Optional

from flask import Blueprint, Flask

from .access import read_key_file
from .config import EXTENSION_KEY, ConfigError, Settings, load_settings
from . import responses_routes, routes  # noqa: F401  (their views register on the blueprint)
from .blueprint import bp
from .fallback import register_fallback
from .metrics import build_metrics
from .observe import Observer, metrics_view
from .startup import check_hosts, unreported
from .state import GatewayState
from .store import Store, StoreError, default_store_url, open_store
from .translate import ModelMap
from .upstream import OllamaClient


class OllamaGateway:
    """Mounts the OpenAI-compatible API on a Flask app.

    :param url_prefix: where the API lives; ``"/v1"`` by default, so the
        official SDKs work with ``base_url="http://host/v1"``.
    :param startup_check: on ``init_app``, log whether each Ollama host
        answers (:mod:`~ollama_gateway.startup`, at most about a second);
        ``False`` makes building the app touch no network at all.
    :param settings: keyword overrides with the lower-case names of
        :class:`~ollama_gateway.config.Settings` (highest precedence).

    .. versionadded:: 0.1
    """

    def __init__(self, app: Optional[Flask] = None, url_prefix: str = "/v1",
                 startup_check: bool = True, **settings: Any) -> None:
        self.url_prefix = url_prefix
        self.startup_check = startup_check
        self.overrides = settings
        if app is not None:
            self.init_app(app)

    @property
    def blueprint(self) -> Blueprint:
        """The blueprint the API is served from, e.g. to exempt it from a host's CSRF check:
        ``csrf.exempt(gateway.blueprint)``.
        """
        return bp

    def init_app(self, app: Flask, url_prefix: Optional[str] = None, **settings: Any) -> None:
        """Configure ``app``: settings, Ollama client, blueprint."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("OllamaGateway is already initialised on this app.")
        merged = dict(self.overrides, **settings)
        conf = load_settings(os.environ, app.config, merged)
        models = ModelMap(conf.model_aliases, conf.allowed_models, conf.upstreams,
                          conf.ollama_url)
        clients = {url: OllamaClient(url, conf.connect_timeout, conf.read_timeout,
                                     conf.pool_maxsize, conf.trust_env, conf.ca_bundle)
                   for url in models.urls}
        store = _store(conf, app.instance_path)
        keys = _keys(conf)
        from . import __version__

        observer = Observer(build_metrics(conf.metrics, os.environ, __version__), keys,
                            list(conf.model_aliases) + list(conf.allowed_models or ())
                            + list(conf.upstreams))
        app.extensions[EXTENSION_KEY] = GatewayState(conf, clients[conf.ollama_url], clients,
                                                     models, keys, store, observer)
        app.register_blueprint(bp, url_prefix=url_prefix if url_prefix is not None
                               else self.url_prefix)
        if self.startup_check:
            # Only the URLs, on one-off connections: the clients' pools stay
            # empty. Hosts the gunicorn master checked are not logged again.
            check_hosts(unreported(clients), conf.trust_env, conf.ca_bundle)


def _keys(conf: Settings) -> FrozenSet[str]:
    if conf.api_keys_file is None:
        return conf.api_keys
    try:
        return conf.api_keys | read_key_file(conf.api_keys_file)
    except OSError as exc:
        raise ConfigError("invalid OLLAMA_GATEWAY_API_KEYS_FILE: cannot read %s: %s"
                          % (conf.api_keys_file, exc.strerror or exc)) from exc


def _store(conf: Settings, instance_path: str) -> Optional[Store]:
    url = conf.store or default_store_url(os.environ, instance_path)
    try:
        return open_store(url, instance_path)
    except StoreError as exc:
        raise ConfigError("invalid OLLAMA_GATEWAY_STORE: %s" % exc) from exc


def create_app(**settings: Any) -> Flask:
    """Return a standalone Flask app serving the API under ``/v1``.

    ``startup_check=False`` turns the start-up check off (see :class:`OllamaGateway`).

    .. versionadded:: 0.1
    """
    app = Flask("ollama_gateway")
    OllamaGateway(app, **settings)
    # The app is ours: paths outside /v1 (a base URL without /v1, say) get
    # the same JSON 404 with a hint instead of Flask's HTML page.
    register_fallback(app)
    if app.extensions[EXTENSION_KEY].observer.metrics is not None:
        # Outside /v1, where Prometheus looks by default.
        app.add_url_rule("/metrics", "ollama_gateway_metrics", metrics_view, methods=["GET"])
    proxies = app.extensions[EXTENSION_KEY].settings.proxy_fix
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,  # type: ignore
                                x_host=proxies, x_prefix=proxies)
    return app
