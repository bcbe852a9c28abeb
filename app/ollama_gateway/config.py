"""Gateway settings: known keys, defaults, casts, precedence.

Every key is namespaced ``OLLAMA_GATEWAY_<NAME>`` in the environment and in
``app.config``. Precedence, lowest first::

    defaults < environment < app.config < keyword arguments of init_app()

The upstream URL also honours Ollama's own ``OLLAMA_HOST`` variable (parsed the
way Ollama's clients parse it) when ``OLLAMA_GATEWAY_OLLAMA_URL`` is not set
anywhere. Casting errors name the offending key. This module never touches
Flask's request or the network.

The map and list settings (``NUM_CTX_BY_MODEL``, ``MODEL_ALIASES``,
``ALLOWED_MODELS``, ``UPSTREAMS``) take JSON text, or a Python mapping/list in
``app.config``; each also has a ``<NAME>_FILE`` form naming a JSON file, for
maps too long for an environment variable. Within one source, setting both
forms is an error; across sources the precedence above applies to the pair.
"""
import json
import os
import re
from typing import Any, Callable, Dict, FrozenSet, Mapping, NamedTuple, Optional, Tuple
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


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("%s must be a non-empty string, got %r" % (what, value))
    return value.strip()


def _int_map(raw: Any) -> Dict[str, int]:
    """Return ``{model: positive int}``."""
    out = {}
    for model, value in _str_map(raw).items():
        try:
            out[_name(model, "a model name")] = _positive_int(value)
        except (TypeError, ValueError) as exc:
            raise ValueError("entry %r: %s" % (model, exc)) from None
    return out


def _alias_map(raw: Any) -> Dict[str, str]:
    """Return ``{client-facing name: Ollama model}``."""
    return {_name(alias, "an alias"): _name(target, "the model of alias %r" % alias)
            for alias, target in _str_map(raw).items()}


def _url_map(raw: Any) -> Dict[str, str]:
    """Return ``{model or alias: Ollama base URL}``, each URL parsed like ``OLLAMA_HOST``."""
    out = {}
    for model, url in _str_map(raw).items():
        try:
            out[_name(model, "a model name")] = parse_ollama_host(_name(url, "the URL"))
        except ValueError as exc:
            raise ValueError("entry %r: %s" % (model, exc)) from None
    return out


def _model_list(raw: Any) -> Optional[Tuple[str, ...]]:
    """Return model names from a list, its JSON text or comma-separated text; None if unset."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        raw = json.loads(text) if text.startswith(("[", "{", '"')) else text.split(",")
    if isinstance(raw, (str, bytes, Mapping)) or not hasattr(raw, "__iter__"):
        raise ValueError("expected a JSON array of model names")
    names = tuple(_name(item, "a model name") for item in raw)
    if not names:
        # An empty allow-list would refuse every model; unsetting the key is
        # how to allow all, so an empty one is most likely a templating slip.
        raise ValueError("an empty list would refuse every model; leave the key unset to "
                         "allow all models")
    return names


def _key_set(raw: Any) -> FrozenSet[str]:
    """Return keys from a list, its JSON text or comma-separated text."""
    if isinstance(raw, str):
        text = raw.strip()
        raw = json.loads(text) if text.startswith("[") else text.split(",")
    if not isinstance(raw, (list, tuple, set, frozenset)) or not all(
            isinstance(key, str) for key in raw):
        raise ValueError("expected a list of strings")
    return frozenset(key.strip() for key in raw if key.strip())


def _optional_path(raw: Any) -> Optional[str]:
    return str(raw) if raw not in (None, "") else None


def _ca_bundle(raw: Any) -> Optional[str]:
    """Return the path of a PEM file or an OpenSSL hashed directory of CA certificates."""
    path = _optional_path(raw)
    if path is not None and not os.path.exists(path):
        # Checked here so a typo fails at start-up, not as a 502 on the first request.
        raise ValueError("no such file or directory: %s" % path)
    return path


#: ``scheme://host[:port]``, which is all a browser's ``Origin`` header holds.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$")


def _origins(raw: Any) -> Optional[Tuple[str, ...]]:
    """Return origins from a list, its JSON text or comma-separated text, ``("*",)`` for
    any origin, or None (CORS off) if unset."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        raw = json.loads(text) if text.startswith("[") else text.split(",")
    if not isinstance(raw, (list, tuple, set, frozenset)) or not all(
            isinstance(item, str) for item in raw):
        raise ValueError("expected a list of origins or \"*\"")
    # Browsers send the scheme and host in lower case, so matching is exact after this.
    origins = tuple(item.strip().lower() for item in raw if item.strip())
    if not origins:
        raise ValueError("an empty list allows no origin; leave the key unset to turn CORS off")
    if "*" in origins and len(origins) > 1:
        raise ValueError("\"*\" allows every origin and cannot be combined with others")
    for origin in origins:
        if origin == "null":
            # Sandboxed iframes and file:// pages all send "null": allowing it allows them all.
            raise ValueError("the origin \"null\" cannot be allowed (any sandboxed page sends it)")
        if origin != "*" and not _ORIGIN.match(origin):
            raise ValueError("%r is not an origin: write scheme://host[:port], with no path or "
                             "trailing slash" % origin)
    return origins


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
    #: Client-facing model names mapped to Ollama models (``gpt-4o`` -> ``llama3.2``).
    model_aliases: Dict[str, str]
    #: If set, only these models (and the aliases) may be used; others get 404.
    allowed_models: Optional[Tuple[str, ...]]
    #: Model or alias -> Ollama base URL; everything else goes to ``ollama_url``.
    upstreams: Dict[str, str]
    #: Top-level ``keep_alive`` sent upstream. ``None``: Ollama's own default.
    keep_alive: Any
    #: Seconds of upstream silence after which a stream gets an SSE comment
    #: line, so proxies and clients do not time out. ``None``: never.
    sse_keepalive: Optional[float]
    #: Seconds a stream waits for Ollama's headers before it commits its own
    #: 200 and keeps the client company with keep-alives; failures within it
    #: are plain JSON errors with their real status.
    stream_header_wait: float
    #: Largest accepted request body in bytes (413 beyond).
    max_body_bytes: int
    #: Where Ollama's ``thinking`` text goes in responses.
    reasoning_field: str
    #: Connection pool size per process; keep it >= gunicorn threads.
    pool_maxsize: int
    #: Whether the client takes a proxy from HTTP(S)_PROXY/ALL_PROXY/NO_PROXY.
    trust_env: bool
    #: Apply werkzeug's ProxyFix (number of trusted proxies) in ``create_app``.
    proxy_fix: Optional[int]
    #: Bearer keys clients must send; empty: any key (or none) is accepted.
    api_keys: FrozenSet[str]
    #: A file with one more key per line, read when the app is created (so a
    #: gunicorn reload picks up changes).
    api_keys_file: Optional[str]
    #: Where stored responses live: ``sqlite:///path``, ``redis://host:port/db``
    #: or ``off``; ``None``: an SQLite file in ``$STATE_DIRECTORY`` or the
    #: app's instance folder.
    store: Optional[str]
    #: Seconds a stored response is kept (OpenAI keeps them 30 days).
    response_ttl: float
    #: CA certificates that an ``https://`` Ollama's certificate must chain
    #: to: a PEM file or a hashed directory. ``None``: the system trust store
    #: (OpenSSL's defaults, which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``).
    ca_bundle: Optional[str]
    #: Origins whose pages may call the API from a browser (CORS), exactly as
    #: browsers send them (``https://app.example.com``), or ``("*",)`` for any;
    #: ``None``: no CORS headers at all.
    cors_origins: Optional[Tuple[str, ...]]
    #: Prometheus metrics: ``auto`` (on when ``prometheus_client`` is
    #: installed), ``on`` (a missing package is a start-up error) or ``off``.
    metrics: str
    #: A bearer key ``GET /metrics`` asks for; ``None``: scraping is open.
    metrics_key: Optional[str]


# name -> (default, cast)
_KEYS = {
    "OLLAMA_URL": (DEFAULT_OLLAMA_URL, _url),
    "CONNECT_TIMEOUT": (5.0, _positive_float),
    "READ_TIMEOUT": (300.0, _positive_float),
    "NUM_CTX": (8192, _optional_int),
    "NUM_CTX_BY_MODEL": ({}, _int_map),
    "MODEL_ALIASES": ({}, _alias_map),
    "ALLOWED_MODELS": (None, _model_list),
    "UPSTREAMS": ({}, _url_map),
    "KEEP_ALIVE": (None, _keep_alive),
    "SSE_KEEPALIVE": (15.0, _optional_float),
    "STREAM_HEADER_WAIT": (10.0, _positive_float),
    "MAX_BODY_BYTES": (32 * 1024 * 1024, _positive_int),
    "REASONING_FIELD": ("reasoning_content", _choice("reasoning_content", "reasoning", "none")),
    "POOL_MAXSIZE": (64, _positive_int),
    "TRUST_ENV": (False, _bool),
    "PROXY_FIX": (None, _optional_int),
    "API_KEYS": (frozenset(), _key_set),
    "API_KEYS_FILE": (None, _optional_path),
    "STORE": (None, _optional_path),
    "RESPONSE_TTL": (30 * 24 * 3600.0, _positive_float),
    "CA_BUNDLE": (None, _ca_bundle),
    "CORS_ORIGINS": (None, _origins),
    "METRICS": ("auto", _choice("auto", "on", "off")),
    "METRICS_KEY": (None, _optional_path),
}  # type: Dict[str, tuple]

#: Keys that also accept ``<NAME>_FILE``: the path of a JSON file holding the value.
_FILE_FORMS = ("NUM_CTX_BY_MODEL", "MODEL_ALIASES", "ALLOWED_MODELS", "UPSTREAMS")

KEYS = tuple(PREFIX + name for name in _KEYS) + tuple(
    PREFIX + name + "_FILE" for name in _FILE_FORMS)


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


def _read_json_file(path: Any) -> Any:
    """Return the decoded JSON content of the file at ``path``."""
    try:
        with open(str(path), encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ValueError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise ValueError("%s is not valid JSON: %s" % (path, exc)) from None


def _raw_value(name: str, environ: Mapping[str, str], app_config: Mapping[str, Any],
               overrides: Mapping[str, Any]) -> Optional[Tuple[Any, str, bool]]:
    """Return (raw value, where it came from, whether it names a file), or None if unset."""
    sources = ((overrides, name.lower(), "argument %s"),
               (app_config, PREFIX + name, "app.config[%r]"),
               (environ, PREFIX + name, "environment variable %s"))
    for source, key, label in sources:
        file_key = key + ("_file" if source is overrides else "_FILE")
        file_given = name in _FILE_FORMS and file_key in source
        if key in source and file_given:
            raise ConfigError("set either %s or %s, not both" % (label % key, label % file_key))
        if key in source:
            return source[key], label % key, False
        if file_given:
            return source[file_key], label % file_key, True
    if name == "OLLAMA_URL" and environ.get("OLLAMA_HOST"):
        return environ["OLLAMA_HOST"], "environment variable OLLAMA_HOST", False
    return None


def load_settings(environ: Mapping[str, str], app_config: Mapping[str, Any],
                  overrides: Optional[Mapping[str, Any]] = None) -> Settings:
    """Return the settings from env, app config and ``init_app`` overrides.

    ``overrides`` use the short lower-case names of :class:`Settings` fields
    (and ``<name>_file`` for the file forms).
    """
    overrides = dict(overrides or {})
    known = {name.lower() for name in _KEYS} | {name.lower() + "_file" for name in _FILE_FORMS}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError("unknown OllamaGateway setting(s): %s" % ", ".join(sorted(unknown)))
    values = {}
    for name, (default, cast) in _KEYS.items():
        found = _raw_value(name, environ, app_config, overrides)
        if found is None:
            values[name.lower()] = default
            continue
        raw, source, is_file = found
        try:
            values[name.lower()] = cast(_read_json_file(raw) if is_file else raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError("invalid %s: %s" % (source, exc)) from exc
    return Settings(**values)
