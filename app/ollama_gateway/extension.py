"""The Flask extension: ``OllamaGateway(app)`` or ``OllamaGateway().init_app(app)``.

``init_app`` reads the settings once, builds the app's Ollama client and keeps
both in ``app.extensions["ollama_gateway"]``, then registers the blueprint.
It handles no requests itself.
"""
import os
from typing import Any, NamedTuple, Optional

from flask import Flask

from .config import EXTENSION_KEY, Settings, load_settings
from .routes import bp
from .upstream import OllamaClient


class GatewayState(NamedTuple):
    """What the views of one app need: its settings and its Ollama client."""

    settings: Settings
    client: OllamaClient

    def num_ctx(self, model: str) -> Optional[int]:
        """Return the ``num_ctx`` to send for an Ollama model name."""
        return self.settings.num_ctx_by_model.get(model, self.settings.num_ctx)


class OllamaGateway:
    """Mounts the OpenAI-compatible API on a Flask app.

    :param url_prefix: where the API lives; ``"/v1"`` by default, so the
        official SDKs work with ``base_url="http://host/v1"``.
    :param settings: keyword overrides with the lower-case names of
        :class:`~ollama_gateway.config.Settings` (highest precedence).

    .. versionadded:: 0.1
    """

    def __init__(self, app: Optional[Flask] = None, url_prefix: str = "/v1",
                 **settings: Any) -> None:
        self.url_prefix = url_prefix
        self.overrides = settings
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, url_prefix: Optional[str] = None, **settings: Any) -> None:
        """Configure ``app``: settings, Ollama client, blueprint."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("OllamaGateway is already initialised on this app.")
        merged = dict(self.overrides, **settings)
        conf = load_settings(os.environ, app.config, merged)
        client = OllamaClient(conf.ollama_url, conf.connect_timeout, conf.read_timeout,
                              conf.pool_maxsize, conf.trust_env)
        app.extensions[EXTENSION_KEY] = GatewayState(conf, client)
        app.register_blueprint(bp, url_prefix=url_prefix if url_prefix is not None
                               else self.url_prefix)


def create_app(**settings: Any) -> Flask:
    """Return a standalone Flask app serving the API under ``/v1``.

    .. versionadded:: 0.1
    """
    app = Flask("ollama_gateway")
    OllamaGateway(app, **settings)
    proxies = app.extensions[EXTENSION_KEY].settings.proxy_fix
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,  # type: ignore
                                x_host=proxies, x_prefix=proxies)
    return app
