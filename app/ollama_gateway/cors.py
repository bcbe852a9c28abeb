"""Cross-origin access (CORS) for browser clients, on the blueprint's routes alone.

Off unless ``CORS_ORIGINS`` is set. The blueprint's hooks call these
functions; nothing here reads the request or the settings itself.

* A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
  is answered before the key check, since browsers never send credentials or
  ``Authorization`` on one: 204, the route's methods, the headers the openai
  SDKs send, and :data:`MAX_AGE`. From an origin not configured it is still
  204, with ``Allow`` and no ``Access-Control-*`` header, so the browser
  blocks the call (its console says the header is missing, which is the
  cause, where a 403 would read as a failed preflight).
* Every other answer to an allowed origin, errors (401, 404, 5xx) and SSE
  streams included, names the origin and exposes the headers SDKs read
  (request id, rate limits, retry hints), so a page sees the real error.
* ``Vary: Origin`` on every answer while CORS is on: a cache must not hand one
  origin's answer to another.

Credentials in the CORS sense (cookies, TLS client certificates) are never
allowed: the gateway takes a bearer key, which a page sends as a header. So
``*`` can be answered as ``*``.

Why not flask-cors: its extension adds app-wide ``after_request`` handlers
and wraps the host's ``app.handle_exception``, which STYLE.md rules out for
a blueprint mounted in someone else's app; the rules fit in these lines.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple

#: Request headers a page may send. Besides the usual, what the official
#: openai SDKs set: the ``X-Stainless-*`` names are every one in openai-node
#: 6.x (``internal/detect-platform``, ``client``, helper and polling methods).
ALLOW_HEADERS = (
    "Authorization", "Content-Type", "Accept", "User-Agent",
    "OpenAI-Beta", "OpenAI-Organization", "OpenAI-Project", "X-Request-Id",
    "X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-OS", "X-Stainless-Package-Version",
    "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count",
    "X-Stainless-Timeout", "X-Stainless-Helper-Method", "X-Stainless-Poll-Helper",
    "X-Stainless-Custom-Poll-Interval",
)

#: Response headers a page may read beyond the CORS-safelisted ones: the
#: SDKs' ``request_id`` and retry logic read these.
EXPOSE_HEADERS = (
    "X-Request-Id", "X-Gateway-Ignored-Params",
    "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
    "retry-after", "x-should-retry",
)

#: Seconds a browser may reuse a preflight's answer (Chromium caps it at 7200);
#: short, so a change of ``CORS_ORIGINS`` reaches open pages soon.
MAX_AGE = 600


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """Return whether a request is a CORS preflight."""
    return (method == "OPTIONS" and "Origin" in headers
            and "Access-Control-Request-Method" in headers)


def allowed_origin(origin: Optional[str], origins: Optional[Tuple[str, ...]]) -> Optional[str]:
    """Return the ``Access-Control-Allow-Origin`` value for ``origin``, or None to send none."""
    if origins is None or not origin:
        return None
    if origins == ("*",):
        return "*"
    return origin if origin.lower() in origins else None


def preflight_headers(methods: Sequence[str]) -> Dict[str, str]:
    """Return the headers only a preflight's answer carries, for a route taking ``methods``."""
    return {
        "Access-Control-Allow-Methods": ", ".join(methods),
        "Access-Control-Allow-Headers": ", ".join(ALLOW_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE),
    }


def response_headers(allow_origin: str, preflight: bool) -> Dict[str, str]:
    """Return the headers every answer to an allowed origin carries."""
    out = {"Access-Control-Allow-Origin": allow_origin}
    if not preflight:
        # Only actual responses are read by the page; a preflight's headers are the browser's.
        out["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)
    return out
