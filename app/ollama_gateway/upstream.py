"""The HTTP client for Ollama's native API, on urllib3 directly.

One urllib3 ``PoolManager`` per upstream base URL (a ``ProxyManager`` when a
proxy applies) owns the connections: ``pool_maxsize`` of them, ``block=False``
(a burst opens extra ones rather than queueing), explicit ``urllib3.Timeout``
on every call, ``retries=False`` (a retried POST would start a second
generation), no redirects. There is no ``requests.Session``: its per-call
work (hooks, cookies, redirects, merging settings) costs about 0.5 ms of CPU
that a fixed upstream does not need. ``requests`` stays a dependency for the
urllib3 range it pins and for its proxy-environment parsing
(``get_environ_proxies`` honours ``NO_PROXY``, including CIDR ranges), which
runs once, when the client is built, and only with ``trust_env``.

A plain-HTTP upstream behind a proxy is asked with an absolute URI in the
request line; an ``https://`` one through a ``CONNECT`` tunnel. Certificates
are checked against ``ca_bundle`` (a PEM file or a hashed directory), or
else OpenSSL's default store. Streamed bodies are read by
:class:`~ollama_gateway.ndjson_body.NDJSONBody`.

One seam (:meth:`OllamaClient._mapped`) turns every transport and JSON
failure into the gateway's errors. What counts is whether any of the answer
had arrived: before the status line a retry is safe and useful; after it,
Ollama had started (or finished) a generation, so a retry would pay for it
again::

    before the status line (answered=False)
      connect refused / connect timeout / DNS      -> UpstreamUnreachable (502, retry)
      proxy refused or failed (ProxyError)         -> UpstreamUnreachable (502, retry)
      TLS handshake failed                         -> UpstreamUnreachable (502, retry)
      certificate not trusted / wrong host name    -> UpstreamError (502, upstream_tls_error)
      closed or reset before the status line       -> UpstreamUnreachable (502, retry)
      no status line within read_timeout           -> UpstreamTimeout (504)
      any other urllib3 error (HostChangedError,
        LocationParseError, ProxySchemeUnknown...) -> UpstreamError (502)
    after the status line (answered=True)
      silence longer than read_timeout             -> UpstreamTimeout (504)
      cut-off body, bad chunking, reset, bad TLS   -> UpstreamError (502)
      body that is not JSON                        -> UpstreamError (502)
      native status 400 / 404 / 429, 503 / other   -> InvalidRequest / ModelNotFound /
                                                      UpstreamUnavailable / UpstreamError

Knows nothing of OpenAI shapes or Flask.
"""
import contextlib
import json
import os
import socket
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.client import HTTPException
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import unquote

import urllib3
from requests.utils import get_environ_proxies, prepend_scheme_if_needed, select_proxy
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, MaxRetryError,
                                NewConnectionError, ProtocolError, ProxyError,
                                ReadTimeoutError, SSLError)

from .errors import (APIError, InvalidRequest, ModelNotFound, UpstreamError,
                     UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable)
from .ndjson_body import NDJSONBody
from .wire import FramingError

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Streams are read straight off the socket (NDJSONBody), so nothing may
# compress them on the way.
_STREAM_HEADERS = dict(_JSON_HEADERS, **{"Accept": "application/x-ndjson",
                                         "Accept-Encoding": "identity"})
Response = urllib3.HTTPResponse


def _encode(body: Dict[str, Any]) -> str:
    """Return ``body`` as JSON text, refusing what JSON cannot carry (NaN, Infinity)."""
    try:
        # allow_nan=False: Python writes NaN, which is no JSON and which Ollama refuses.
        return json.dumps(body, allow_nan=False)
    except ValueError as exc:
        raise InvalidRequest("The request holds a number JSON cannot carry (%s); nothing "
                             "was sent to Ollama." % exc, code="invalid_value") from exc


def _native_message(resp: Response) -> str:
    """Return the ``error`` text of a native error body, or the body itself."""
    try:
        body = json.loads(resp.data)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    content_type = resp.headers.get("Content-Type", "")
    text = resp.data.decode("utf-8", "replace").strip()
    if content_type.startswith("text/plain") and text:
        return text[:300]
    # An HTML error page (a proxy in front of Ollama, say) must not reach the client.
    return "HTTP %d with a %s body" % (resp.status, content_type.split(";")[0] or "empty")


def error_for_status(resp: Response) -> Optional[APIError]:
    """Return the gateway error for a non-2xx native response, else ``None``."""
    status = resp.status
    if status < 300:
        return None
    message = _native_message(resp)
    is_json = resp.headers.get("Content-Type", "").startswith("application/json")
    if status == 404 and is_json:
        return ModelNotFound(message, param="model")
    if status == 400:
        return InvalidRequest(message)
    if status in (429, 503):
        return UpstreamUnavailable("Ollama is busy: %s" % message)
    return UpstreamError("Ollama answered %d: %s" % (status, message))


def environ_proxy(base_url: str) -> Optional[str]:
    """Return the proxy URL the environment gives for ``base_url``, or ``None``.

    ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` (lower case first) and
    ``NO_PROXY``, as requests and curl read them.
    """
    proxy = select_proxy(base_url, get_environ_proxies(base_url))
    return prepend_scheme_if_needed(proxy, "http") if proxy else None


def _cert_failure(exc: Optional[BaseException]) -> Optional[BaseException]:
    """Return the certificate verification error behind ``exc``, if there is one."""
    for _ in range(6):  # urllib3 wraps it once or twice (SSLError, ProxyError, MaxRetryError)
        if exc is None:
            return None
        # urllib3 1.26 may check host names itself and raise its own CertificateError.
        if isinstance(exc, ssl.SSLCertVerificationError) or type(exc).__name__ == "CertificateError":
            return exc
        inner = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
        if inner is None and exc.args and isinstance(exc.args[-1], BaseException):
            inner = exc.args[-1]
        exc = inner
    return None


class OllamaClient:
    """A pooled client for one Ollama base URL.

    :param trust_env: take a proxy from the environment (see :func:`environ_proxy`).
    :param ca_bundle: a PEM file or hashed directory of CA certificates for an
        ``https://`` base URL; ``None``: the system store.
    """

    def __init__(self, base_url: str, connect_timeout: float = 5.0,
                 read_timeout: float = 300.0, pool_maxsize: int = 64,
                 trust_env: bool = False, ca_bundle: Optional[str] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._timeouts = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        url = urllib3.util.parse_url(self.base_url)
        options = {"maxsize": pool_maxsize, "block": False, "timeout": self._timeouts,
                   "retries": False}  # type: Dict[str, Any]
        if url.scheme == "https":
            options["cert_reqs"] = "CERT_REQUIRED"
            if ca_bundle:
                options["ca_cert_dir" if os.path.isdir(ca_bundle) else "ca_certs"] = ca_bundle
        # Proxy variables in a service's environment must not reroute
        # traffic to Ollama unless the operator says so.
        proxy = environ_proxy(self.base_url) if trust_env else None
        #: Where requests go: the proxy's ``scheme://host:port``, or ``None``.
        self.proxy = None  # type: Optional[str]
        if proxy:
            parts = urllib3.util.parse_url(proxy)
            if parts.scheme not in ("http", "https"):
                raise ValueError("OLLAMA_GATEWAY_TRUST_ENV: the proxy for %s is %s://...; only "
                                 "http:// and https:// proxies are supported"
                                 % (self.base_url, parts.scheme))
            self.proxy = "%s://%s:%d" % (parts.scheme, parts.host,
                                         parts.port or (443 if parts.scheme == "https" else 80))
            auth = {} if parts.auth is None else urllib3.make_headers(
                proxy_basic_auth=unquote(parts.auth))
            manager = urllib3.ProxyManager(self.proxy, num_pools=1, proxy_headers=auth,
                                           **options)  # type: urllib3.PoolManager
        else:
            manager = urllib3.PoolManager(num_pools=1, **options)
        #: The urllib3 manager that owns this client's connections.
        self.manager = manager
        # The one pool this client uses (to Ollama, or to the proxy for plain
        # HTTP), resolved once rather than per call as manager.urlopen would.
        self._pool = self.manager.connection_from_url(self.base_url)
        # Forwarded through a proxy, the request line carries the absolute URI.
        forwarded = bool(proxy) and url.scheme == "http"
        self._prefix = self.base_url if forwarded else (url.path or "")
        # Waits for a stream's headers off the request thread (start_stream);
        # threads start lazily, so nothing exists before gunicorn forks.
        self._openers = ThreadPoolExecutor(max_workers=pool_maxsize,
                                           thread_name_prefix="ollama-gateway-open")

    def close(self) -> None:
        """Close the pooled connections."""
        self.manager.clear()

    def _where(self) -> str:
        return self.base_url if self.proxy is None else "%s (through the proxy %s)" % (
            self.base_url, self.proxy)

    @contextlib.contextmanager
    def _mapped(self, answered: bool) -> Iterator[None]:
        """Turn what urllib3, http.client, sockets and JSON raise into an :class:`APIError`.

        :param answered: whether the status line had arrived (see the module docstring).
        """
        try:
            yield
        except (HTTPError, HTTPException, OSError, ValueError) as exc:
            error = self._error_for(exc, answered)
            if error is None:
                raise
            raise error from exc

    def _error_for(self, exc: BaseException, answered: bool) -> Optional[APIError]:
        """Return the gateway error for a transport failure; ``None`` for a bug of ours."""
        if isinstance(exc, MaxRetryError) and getattr(exc, "reason", None) is not None:
            exc = exc.reason  # only with retries, which are off; mapped all the same
        if isinstance(exc, (ReadTimeoutError, socket.timeout)):
            if answered:
                return UpstreamTimeout("Ollama at %s sent nothing for %g seconds."
                                       % (self.base_url, self.timeout[1]))
            return UpstreamTimeout("Ollama at %s did not answer within %g seconds."
                                   % (self.base_url, self.timeout[1]))
        if answered:
            if isinstance(exc, (HTTPError, HTTPException, OSError, FramingError)):
                return UpstreamError("The connection to Ollama at %s broke mid-response."
                                     % self.base_url)
            return UpstreamError("Ollama at %s sent invalid JSON." % self.base_url)
        cert = _cert_failure(exc)
        if cert is not None:
            reason = getattr(cert, "verify_message", None) or str(cert)
            return UpstreamError("TLS verification of Ollama at %s failed (%s); set "
                                 "OLLAMA_GATEWAY_CA_BUNDLE to the CA that signed its "
                                 "certificate." % (self.base_url, reason),
                                 code="upstream_tls_error")
        if isinstance(exc, ProxyError):
            return UpstreamUnreachable("Could not reach Ollama at %s through the proxy %s."
                                       % (self.base_url, self.proxy))
        if isinstance(exc, SSLError):
            return UpstreamUnreachable("The TLS handshake with Ollama at %s failed."
                                       % self._where())
        if isinstance(exc, (NewConnectionError, ConnectTimeoutError)):
            return UpstreamUnreachable("Could not connect to Ollama at %s." % self._where())
        if isinstance(exc, (ProtocolError, HTTPException, OSError)):
            return UpstreamUnreachable("The connection to Ollama at %s closed before it "
                                       "answered." % self._where())
        if isinstance(exc, HTTPError):
            return UpstreamError("The request to Ollama at %s failed: %s."
                                 % (self._where(), type(exc).__name__))
        return None

    def _open(self, method: str, path: str, body: Optional[Dict[str, Any]],
              stream: bool = False, read_timeout: Optional[float] = None) -> Response:
        """Return the response to one request once its headers are in, status checked.

        Its body is left unread: the caller reads it (and so releases the connection).
        """
        timeout = self._timeouts if read_timeout is None else urllib3.Timeout(
            connect=self.timeout[0], read=read_timeout)
        payload = None if body is None else _encode(body)
        with self._mapped(answered=False):
            resp = self._pool.urlopen(
                method, self._prefix + path, body=payload,
                headers=_STREAM_HEADERS if stream else _JSON_HEADERS, timeout=timeout,
                retries=False, redirect=False, assert_same_host=False,
                preload_content=False, decode_content=not stream)
        with self._mapped(answered=True):
            error = error_for_status(resp)
        if error is not None:
            close_response(resp)
            raise error
        return resp

    def _json(self, method: str, path: str, body: Optional[Dict[str, Any]],
              read_timeout: Optional[float] = None) -> Dict[str, Any]:
        resp = self._open(method, path, body, read_timeout=read_timeout)
        # Reading the whole body hands the connection back to the pool; a
        # failure there closes it.
        with self._mapped(answered=True):
            return json.loads(resp.data)

    def get_json(self, path: str, read_timeout: Optional[float] = None) -> Dict[str, Any]:
        """Return the decoded JSON body of ``GET path``."""
        return self._json("GET", path, None, read_timeout)

    def post_json(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """Return the decoded JSON body of ``POST path`` with a JSON body."""
        return self._json("POST", path, body)

    def open_stream(self, path: str, body: Dict[str, Any]) -> Response:
        """Return the open streamed response of ``POST path``; status already checked.

        The caller owns the response and must close it (:func:`close_response`).
        """
        return self._open("POST", path, body, stream=True)

    def start_stream(self, path: str, body: Dict[str, Any],
                     background: bool = True) -> "PendingStream":
        """Return a streamed ``POST path`` whose headers may still be on their way.

        Ollama sends no headers until the model is loaded, which can take
        minutes; in the background the caller can commit its own response and
        send keep-alives meanwhile. ``background=False`` opens it right here.
        """
        if background:
            return PendingStream(self, self._openers.submit(self.open_stream, path, body))
        future = Future()  # type: Future
        try:
            future.set_result(self.open_stream(path, body))
        except APIError as exc:
            future.set_exception(exc)
        return PendingStream(self, future)


class PendingStream:
    """A streamed upstream request: its headers, then its NDJSON batches."""

    def __init__(self, client: OllamaClient, future: "Future") -> None:
        self._client = client
        self._future = future
        self._body = None  # type: Optional[NDJSONBody]

    def wait(self, seconds: Optional[float]) -> bool:
        """Return whether the headers arrived within ``seconds``.

        :raises APIError: when the request failed (status, connection, ...).
        """
        try:
            self._future.result(timeout=seconds)
        except FutureTimeout:
            return False
        return True

    def batches(self, idle: Optional[float] = None) -> Iterator[List[bytes]]:
        """Yield what :meth:`NDJSONBody.batches` yields, once the headers are here.

        Until they arrive, an empty list is yielded every ``idle`` seconds.
        """
        while not self.wait(idle):
            yield []
        self._body = NDJSONBody(self._future.result(), self._client.timeout[1])
        with self._client._mapped(answered=True):
            for batch in self._body.batches(idle):
                yield batch

    def close(self) -> None:
        """Release the upstream response now, or as soon as it arrives."""
        if self._body is not None:
            close_response(self._future.result(), self._body.finish())
        else:
            self._future.add_done_callback(_close_response)


def _close_response(future: "Future") -> None:
    if not future.cancelled() and future.exception() is None:
        close_response(future.result())


def close_response(resp: Response, complete: bool = False) -> None:
    """Give an upstream response's connection back to the pool.

    A fully read body leaves the connection reusable. An unfinished one is
    closed, which is also how Ollama learns to stop generating.
    """
    if complete:
        resp._fp.close()  # http.client's side only; the socket stays open
    else:
        resp.close()
    resp.release_conn()
