"""Gateway settings: known keys, defaults, casts, precedence.

Every key is namespaced ``OLLAMA_GATEWAY_<NAME>`` in the environment and in
``app.config``. Precedence, lowest first::

    defaults < environment < app.config < keyword arguments of init_app()

The upstream URL also honours Ollama's own ``OLLAMA_HOST`` variable (parsed the
way Ollama's clients parse it) when ``OLLAMA_GATEWAY_OLLAMA_URL`` is not set
anywhere. Casting errors name the offending key. This module never touches
Flask's request or the network.
"""
import json
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional
from urllib.parse import urlsplit

PREFIX = "OLLAMA_GATEWAY_"
#: Where init_app keeps the per-app state in ``app.extensions``.
EXTENSION_KEY = "ollama_gateway"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected a boolean (true/false), got %r" % (raw,))


def _positive_float(raw: Any) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be greater than 0, got %r" % (raw,))
    return value


def _positive_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected an integer, got %r" % (raw,))
    value = int(raw)
    if value <= 0:
        raise ValueError("must be greater than 0, got %r" % (raw,))
    return value


def _optional_int(raw: Any) -> Optional[int]:
    """Return ``None`` for 0 or an empty value: that turns the feature off."""
    if raw is None or raw == "" or raw == 0 or raw == "0":
        return None
    return _positive_int(raw)


def _optional_float(raw: Any) -> Optional[float]:
    """Return ``None`` for 0 or an empty value: that turns the feature off."""
    if raw is None or raw == "" or float(raw) == 0:
        return None
    return _positive_float(raw)


def _keep_alive(raw: Any) -> Any:
    """Return Ollama's ``keep_alive`` value: a duration string or seconds."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        return text


def _url(raw: Any) -> str:
    return parse_ollama_host(str(raw))


def _choice(*allowed: str) -> Callable[[Any], str]:
    def cast(raw: Any) -> str:
        text = str(raw).strip()
        if text not in allowed:
            raise ValueError("expected one of %s, got %r" % (", ".join(allowed), raw))
        return text
    return cast


def _str_map(raw: Any) -> Dict[str, Any]:
    """Return a dict from a mapping or its JSON text."""
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else {}
    if not isinstance(raw, Mapping):
        raise ValueError("expected a JSON object")
    return dict(raw)


class Settings(NamedTuple):
    """The gateway's configuration, read once per app by ``init_app``."""

    #: Base URL of the Ollama server.
    ollama_url: str
    #: Seconds to wait for a TCP connection to Ollama.
    connect_timeout: float
    #: Seconds to wait for Ollama's response headers and between two streamed
    #: lines. A cold model load happens before the headers, so keep it long.
    read_timeout: float
    #: ``options.num_ctx`` sent with every chat and completion request, so that
    #: prompts are not cut at Ollama's small default context. ``None``: not sent.
    num_ctx: Optional[int]
    #: Per-model ``num_ctx`` overrides (model name as sent to Ollama).
    num_ctx_by_model: Dict[str, int]
    #: Top-level ``keep_alive`` sent upstream. ``None``: Ollama's own default.
    keep_alive: Any
    #: Seconds of upstream silence after which a stream gets an SSE comment
    #: line, so proxies and clients do not time out. ``None``: never.
    keepalive_interval: Optional[float]
    #: Largest accepted request body in bytes (413 beyond).
    max_body_bytes: int
    #: Where Ollama's ``thinking`` text goes in responses.
    reasoning_field: str
    #: Connection pool size per process; keep it >= gunicorn threads.
    pool_maxsize: int
    #: Whether ``requests`` may use proxy variables from the environment.
    trust_env: bool
    #: Apply werkzeug's ProxyFix (number of trusted proxies) in ``create_app``.
    proxy_fix: Optional[int]


# name -> (default, cast)
_KEYS = {
    "OLLAMA_URL": (DEFAULT_OLLAMA_URL, _url),
    "CONNECT_TIMEOUT": (5.0, _positive_float),
    "READ_TIMEOUT": (300.0, _positive_float),
    "NUM_CTX": (8192, _optional_int),
    "NUM_CTX_BY_MODEL": ({}, _str_map),
    "KEEP_ALIVE": (None, _keep_alive),
    "KEEPALIVE_INTERVAL": (15.0, _optional_float),
    "MAX_BODY_BYTES": (32 * 1024 * 1024, _positive_int),
    "REASONING_FIELD": ("reasoning_content", _choice("reasoning_content", "reasoning", "none")),
    "POOL_MAXSIZE": (64, _positive_int),
    "TRUST_ENV": (False, _bool),
    "PROXY_FIX": (None, _optional_int),
}  # type: Dict[str, tuple]

KEYS = tuple(PREFIX + name for name in _KEYS)


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key."""


def parse_ollama_host(value: str) -> str:
    """Return a base URL from an ``OLLAMA_HOST``-style value.

    Accepts what Ollama's clients accept: ``host``, ``host:port``, ``:port``,
    and full URLs; the scheme defaults to http and the port to 11434.
    """
    text = value.strip().rstrip("/")
    if not text:
        return DEFAULT_OLLAMA_URL
    # Like Ollama's envconfig.Host: a bare host gets Ollama's port, an explicit
    # scheme gets that scheme's port.
    default_port = 11434
    if "://" in text:
        default_port = 443 if text.lower().startswith("https://") else 80
    else:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError("unsupported scheme %r" % parts.scheme)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s:%d%s" % (parts.scheme, host, parts.port or default_port,
                             parts.path.rstrip("/"))


def load_settings(environ: Mapping[str, str], app_config: Mapping[str, Any],
                  overrides: Optional[Mapping[str, Any]] = None) -> Settings:
    """Return the settings from env, app config and ``init_app`` overrides.

    ``overrides`` use the short lower-case names of :class:`Settings` fields.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - {name.lower() for name in _KEYS}
    if unknown:
        raise ConfigError("unknown OllamaGateway setting(s): %s" % ", ".join(sorted(unknown)))
    values = {}
    for name, (default, cast) in _KEYS.items():
        key = PREFIX + name
        if name.lower() in overrides:
            raw, source = overrides[name.lower()], "argument %s" % name.lower()
        elif key in app_config:
            raw, source = app_config[key], "app.config[%r]" % key
        elif key in environ:
            raw, source = environ[key], "environment variable %s" % key
        elif name == "OLLAMA_URL" and environ.get("OLLAMA_HOST"):
            raw, source = environ["OLLAMA_HOST"], "environment variable OLLAMA_HOST"
        else:
            values[name.lower()] = default
            continue
        try:
            values[name.lower()] = cast(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError("invalid %s: %s" % (source, exc)) from exc
    try:
        values["num_ctx_by_model"] = {
            str(model): _positive_int(n) for model, n in values["num_ctx_by_model"].items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError("invalid %sNUM_CTX_BY_MODEL: %s" % (PREFIX, exc)) from exc
    return Settings(**values)
