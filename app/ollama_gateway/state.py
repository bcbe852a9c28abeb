"""The per-app state the views read: settings, model map, one client per host.

``init_app`` builds a :class:`GatewayState` once and keeps it in
``app.extensions["ollama_gateway"]``; :func:`current` returns it for the app
handling the request, typed, so views never handle ``Any``.
"""
from typing import TYPE_CHECKING, Dict, FrozenSet, NamedTuple, Optional

from flask import current_app

from .config import EXTENSION_KEY, Settings
from .store import Store
from .translate import ModelMap
from .upstream import OllamaClient

if TYPE_CHECKING:  # observe imports this module
    from .observe import Observer


class Route(NamedTuple):
    """Where one request goes: the client's model name, Ollama's, and the host's client."""

    name: str
    ollama_model: str
    client: OllamaClient


class GatewayState(NamedTuple):
    """What the views of one app need: settings, model map, one client per host."""

    settings: Settings
    #: The client for the default upstream (``settings.ollama_url``).
    client: OllamaClient
    #: Base URL -> client, the default first; one pooled urllib3 manager per host.
    clients: Dict[str, OllamaClient]
    models: ModelMap
    #: Accepted bearer keys (settings and key file); empty: no key needed.
    keys: FrozenSet[str]
    #: Stored responses; ``None`` when storing is off.
    store: Optional[Store]
    #: Usage log and metrics (:mod:`.observe`).
    observer: "Observer"

    def num_ctx(self, model: str) -> Optional[int]:
        """Return the ``num_ctx`` to send for an Ollama model name."""
        return self.settings.num_ctx_by_model.get(model, self.settings.num_ctx)

    def route(self, model: str) -> Route:
        """Return where a request for the client's ``model`` goes.

        :raises ModelNotFound: for a model outside the allow-list.
        """
        ollama_model, url = self.models.resolve(model)
        return Route(model, ollama_model, self.clients[url])


def current() -> GatewayState:
    """Return the state of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
