"""The HTTP client for Ollama's native API.

One ``requests.Session`` per app owns the connection pool (an ``HTTPAdapter``
with ``pool_maxsize`` connections, proxies from the environment only when
``trust_env`` is set). Requests go through that adapter's urllib3 pool
directly: ``Session.request`` adds about 0.5 ms of CPU per call (hooks,
cookies, redirects, re-merging settings) that a fixed loopback upstream does
not need. Every call has explicit ``(connect, read)`` timeouts, and one seam
(:meth:`OllamaClient._mapped`) turns transport and JSON failures into the
gateway's errors::

    no connection (refused, connect timeout, TLS)  -> UpstreamUnreachable (502)
    read timeout (headers or mid-stream)           -> UpstreamTimeout (504)
    broken body, bad chunking, bad JSON            -> UpstreamError (502)
    native status 400 / 404 / 503 / other          -> InvalidRequest / ModelNotFound /
                                                      UpstreamUnavailable / UpstreamError

Knows nothing of OpenAI shapes or Flask.
"""
import contextlib
import json
import select
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import (ConnectTimeoutError, NewConnectionError, ProtocolError,
                                ReadTimeoutError, SSLError)

from .errors import (APIError, InvalidRequest, ModelNotFound, UpstreamError,
                     UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable)
from .wire import Dechunker, FramingError, LineSplitter

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Streams are read straight off the socket (NDJSONBody), so nothing may
# compress them on the way.
_STREAM_HEADERS = dict(_JSON_HEADERS, **{"Accept": "application/x-ndjson",
                                         "Accept-Encoding": "identity"})
Response = urllib3.HTTPResponse


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


class OllamaClient:
    """A pooled client for one Ollama base URL."""

    def __init__(self, base_url: str, connect_timeout: float = 5.0,
                 read_timeout: float = 300.0, pool_maxsize: int = 64,
                 trust_env: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        # Proxy variables in a service's environment must not reroute loopback
        # traffic to Ollama unless the operator says so.
        self.session.trust_env = trust_env
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        parts = urlsplit(self.base_url)
        proxy = get_environ_proxies(self.base_url).get(parts.scheme) if trust_env else None
        manager = adapter.proxy_manager_for(proxy) if proxy else adapter.poolmanager
        self._pool = manager.connection_from_url(self.base_url)
        # A plain-HTTP proxy wants the absolute URL in the request line.
        self._prefix = self.base_url if proxy and parts.scheme == "http" else parts.path
        self._timeouts = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # Waits for a stream's headers off the request thread (start_stream);
        # threads start lazily, so nothing exists before gunicorn forks.
        self._openers = ThreadPoolExecutor(max_workers=pool_maxsize,
                                           thread_name_prefix="ollama-gateway-open")

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except ReadTimeoutError as exc:
            raise UpstreamTimeout("Ollama at %s did not answer within %g seconds."
                                  % (self.base_url, self.timeout[1])) from exc
        except (NewConnectionError, ConnectTimeoutError, SSLError) as exc:
            raise UpstreamUnreachable("Could not connect to Ollama at %s." % self.base_url) from exc
        except ProtocolError as exc:
            raise UpstreamUnreachable("The connection to Ollama at %s failed before it "
                                      "answered." % self.base_url) from exc
        except socket.timeout as exc:
            raise UpstreamTimeout("Ollama at %s sent nothing for %g seconds."
                                  % (self.base_url, self.timeout[1])) from exc
        except (FramingError, OSError) as exc:  # while NDJSONBody reads the socket
            raise UpstreamError("The connection to Ollama at %s broke mid-response."
                                % self.base_url) from exc
        except ValueError as exc:
            raise UpstreamError("Ollama at %s sent invalid JSON." % self.base_url) from exc

    def _send(self, method: str, path: str, body: Optional[Dict[str, Any]],
              stream: bool = False, read_timeout: Optional[float] = None) -> Response:
        """Return the response to one request, its status checked."""
        timeout = self._timeouts if read_timeout is None else urllib3.Timeout(
            connect=self.timeout[0], read=read_timeout)
        resp = self._pool.urlopen(
            method, self._prefix + path, body=None if body is None else json.dumps(body),
            headers=_STREAM_HEADERS if stream else _JSON_HEADERS, timeout=timeout,
            retries=False, redirect=False, preload_content=not stream, decode_content=not stream)
        error = error_for_status(resp)
        if error is not None:
            close_response(resp)
            raise error
        return resp

    def get_json(self, path: str, read_timeout: Optional[float] = None) -> Dict[str, Any]:
        """Return the decoded JSON body of ``GET path``."""
        with self._mapped():
            return json.loads(self._send("GET", path, None, read_timeout=read_timeout).data)

    def post_json(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """Return the decoded JSON body of ``POST path`` with a JSON body."""
        with self._mapped():
            return json.loads(self._send("POST", path, body).data)

    def open_stream(self, path: str, body: Dict[str, Any]) -> Response:
        """Return the open streamed response of ``POST path``; status already checked.

        The caller owns the response and must close it (:func:`close_response`).
        """
        with self._mapped():
            return self._send("POST", path, body, stream=True)

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


class NDJSONBody:
    """The body of one streamed native response, read straight off its socket.

    Each read takes whatever Ollama has sent so far, so a fast upstream costs
    one read (and the caller one write) for many lines.
    """

    def __init__(self, client: OllamaClient, resp: Response) -> None:
        self._client = client
        native = resp._fp  # http.client.HTTPResponse, in urllib3 1.26 and 2.x alike
        self._fp = native.fp  # the BufferedReader over the socket
        self._sock = resp.connection.sock
        self._dechunk = Dechunker() if native.chunked else None
        self._left = native.length  # None: read to EOF (or to the last chunk)
        self._lines = LineSplitter()
        #: The whole body has been read: the connection may serve another request.
        self.complete = False

    def _take(self, data: bytes) -> List[bytes]:
        """Return the lines that ``data`` completes; notes the end of the body."""
        if self._left is not None:
            self._left -= len(data)
        if self._dechunk is not None:
            data = self._dechunk.feed(data)
        batch = self._lines.feed(data)
        if self._left == 0 or (self._dechunk is not None and self._dechunk.done):
            self.complete = True
            rest = self._lines.rest()
            if rest is not None:
                batch.append(rest)
        return batch

    def _size(self) -> int:
        return 65536 if self._left is None else min(self._left, 65536)

    def batches(self, idle: Optional[float] = None) -> Iterator[List[bytes]]:
        """Yield the lines of the body, a list per socket read.

        With ``idle`` set, an empty list is yielded whenever the upstream has
        been silent that long, so the caller can send a keep-alive (and learn
        that its own client is gone).

        :raises UpstreamError: for a broken body (the lines themselves are
            the caller's to decode, see :func:`~ollama_gateway.wire.decode_line`).
        :raises UpstreamTimeout: after ``read_timeout`` seconds of silence.
        """
        read_timeout = self._client.timeout[1]
        wait = min(idle, read_timeout) if idle else read_timeout
        poller = select.poll()
        poller.register(self._fp.fileno(), select.POLLIN)
        silent = 0.0
        with self._client._mapped():
            # What http.client buffered along with the headers is taken without
            # blocking. After any read1 the buffer is empty, so from then on
            # polling the socket says exactly whether data is waiting.
            data = _read_nowait(self._fp, self._sock, self._size())
            while not self.complete:
                if data is None:
                    if not poller.poll(wait * 1000):
                        silent += wait
                        if silent >= read_timeout:
                            raise socket.timeout()
                        yield []
                        continue
                    silent = 0.0
                    data = self._fp.read1(self._size())
                if not data:  # EOF: the socket was readable and gave nothing
                    if self._dechunk is not None or self._left:
                        raise FramingError("the body ended early")
                    self.complete = True
                    rest = self._lines.rest()
                    batch = [] if rest is None else [rest]
                else:
                    batch = self._take(data)
                if batch:
                    yield batch
                data = None

    def finish(self, wait: float = 0.05) -> bool:
        """Return whether the body is read to its end, waiting ``wait`` seconds at most.

        After Ollama's last line the end of the chunked body follows at once
        (the server writes it when its handler returns); taking it lets the
        connection be reused. A body that does not end that soon is left, and
        the connection closed.
        """
        poller = select.poll()
        poller.register(self._fp.fileno(), select.POLLIN)
        deadline = time.monotonic() + wait
        try:
            while not self.complete:
                data = _read_nowait(self._fp, self._sock, self._size())
                if data is None:
                    left = deadline - time.monotonic()
                    if left <= 0 or not poller.poll(left * 1000):
                        return False
                    data = self._fp.read1(self._size())
                    if not data:
                        return False  # EOF before the end of the body
                self._take(data)
        except (OSError, FramingError):
            return False
        return True


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
        self._body = NDJSONBody(self._client, self._future.result())
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


def _read_nowait(fp: Any, sock: socket.socket, left: Optional[int]) -> Optional[bytes]:
    """Return the bytes available at once on a buffered socket file, or ``None``."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # read1 then returns b"" instead of blocking
    try:
        data = fp.read1(65536 if left is None else min(left, 65536))
    finally:
        sock.settimeout(timeout)
    return data or None
