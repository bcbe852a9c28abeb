"""The HTTP client for Ollama's native API.

One pooled ``requests.Session`` per app, explicit ``(connect, read)`` timeouts
on every call, and one seam (:meth:`OllamaClient._mapped`) where ``requests``
and JSON failures become the gateway's errors::

    requests.ConnectionError / ConnectTimeout  -> UpstreamUnreachable (502)
    requests.ReadTimeout (also mid-stream)      -> UpstreamTimeout (504)
    broken chunked body, bad JSON, error line  -> UpstreamError (502)
    native status 400 / 404 / 503 / other      -> InvalidRequest / ModelNotFound /
                                                  UpstreamUnavailable / UpstreamError

Knows nothing of OpenAI shapes or Flask.
"""
import contextlib
import json
import select
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, Iterator, List, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from .errors import (APIError, InvalidRequest, ModelNotFound, UpstreamError,
                     UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable)
from .wire import Dechunker, FramingError, LineSplitter

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Streams are read straight off the socket (iter_batches), so nothing may
# compress them on the way.
_STREAM_HEADERS = dict(_JSON_HEADERS, **{"Accept": "application/x-ndjson",
                                         "Accept-Encoding": "identity"})


def _native_message(resp: requests.Response) -> str:
    """Return the ``error`` text of a native error body, or the body itself."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    content_type = resp.headers.get("Content-Type", "")
    if content_type.startswith("text/plain") and resp.text.strip():
        return resp.text.strip()[:300]
    # An HTML error page (a proxy in front of Ollama, say) must not reach the client.
    return "HTTP %d with a %s body" % (resp.status_code, content_type.split(";")[0] or "empty")


def error_for_status(resp: requests.Response) -> Optional[APIError]:
    """Return the gateway error for a non-2xx native response, else ``None``."""
    status = resp.status_code
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
        # Waits for a stream's headers off the request thread (start_stream);
        # threads start lazily, so nothing exists before gunicorn forks.
        self._openers = ThreadPoolExecutor(max_workers=pool_maxsize,
                                           thread_name_prefix="ollama-gateway-open")

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except requests.ReadTimeout as exc:
            raise UpstreamTimeout("Ollama at %s did not answer within %g seconds."
                                  % (self.base_url, self.timeout[1])) from exc
        except requests.ConnectTimeout as exc:
            raise UpstreamUnreachable("Could not connect to Ollama at %s (timed out after %g "
                                      "seconds)." % (self.base_url, self.timeout[0])) from exc
        except (requests.exceptions.ChunkedEncodingError, FramingError) as exc:
            raise UpstreamError("The connection to Ollama at %s broke mid-response."
                                % self.base_url) from exc
        except requests.ConnectionError as exc:
            # requests wraps a read timeout inside a streamed body this way.
            if exc.args and isinstance(exc.args[0], ReadTimeoutError):
                raise UpstreamTimeout("Ollama at %s sent nothing for %g seconds."
                                      % (self.base_url, self.timeout[1])) from exc
            raise UpstreamUnreachable("Could not connect to Ollama at %s." % self.base_url) from exc
        except socket.timeout as exc:
            raise UpstreamTimeout("Ollama at %s sent nothing for %g seconds."
                                  % (self.base_url, self.timeout[1])) from exc
        except OSError as exc:  # the socket itself, while iter_batches reads it
            raise UpstreamError("The connection to Ollama at %s broke mid-response."
                                % self.base_url) from exc
        except ValueError as exc:
            raise UpstreamError("Ollama at %s sent invalid JSON." % self.base_url) from exc

    def _check(self, resp: requests.Response) -> requests.Response:
        error = error_for_status(resp)
        if error is not None:
            resp.close()
            raise error
        return resp

    def get_json(self, path: str, read_timeout: Optional[float] = None) -> Dict[str, Any]:
        """Return the decoded JSON body of ``GET path``."""
        timeout = self.timeout if read_timeout is None else (self.timeout[0], read_timeout)
        with self._mapped():
            resp = self.session.get(self.base_url + path, timeout=timeout)
            return self._check(resp).json()

    def post_json(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """Return the decoded JSON body of ``POST path`` with a JSON body."""
        with self._mapped():
            resp = self.session.post(self.base_url + path, data=json.dumps(body),
                                     headers=_JSON_HEADERS, timeout=self.timeout)
            return self._check(resp).json()

    def open_stream(self, path: str, body: Dict[str, Any]) -> requests.Response:
        """Return the open streamed response of ``POST path``; status already checked.

        The caller owns the response and must close it.
        """
        with self._mapped():
            resp = self.session.post(self.base_url + path, data=json.dumps(body),
                                     headers=_STREAM_HEADERS, timeout=self.timeout, stream=True)
            return self._check(resp)

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

    def iter_batches(self, resp: requests.Response,
                     idle: Optional[float] = None) -> Iterator[List[bytes]]:
        """Yield the lines of a native NDJSON stream, a list per socket read.

        Each read takes whatever Ollama has sent so far, so a fast upstream
        costs one read (and the caller one write) for many lines. With ``idle``
        set, an empty list is yielded whenever the upstream has been silent that
        long, so the caller can send a keep-alive (and learn that its own
        client is gone). The caller closes ``resp``.

        :raises UpstreamError: for a broken body (the lines themselves are
            the caller's to decode, see :func:`~ollama_gateway.wire.decode_line`).
        :raises UpstreamTimeout: after ``read_timeout`` seconds of silence.
        """
        native = resp.raw._fp  # http.client.HTTPResponse, in urllib3 1.26 and 2.x alike
        fp = native.fp  # the BufferedReader over the socket
        dechunk = Dechunker() if native.chunked else None
        left = native.length  # None: read to EOF (or to the last chunk)
        lines = LineSplitter()
        wait = min(idle, self.timeout[1]) if idle else self.timeout[1]
        poller = select.poll()
        poller.register(fp.fileno(), select.POLLIN)
        silent = 0.0
        with self._mapped():
            # What http.client buffered along with the headers is taken without
            # blocking. After any read1 the buffer is empty, so from then on
            # polling the socket says exactly whether data is waiting.
            data = _read_nowait(fp, resp.raw.connection.sock, left)
            while True:
                if data is None:
                    if not poller.poll(wait * 1000):
                        silent += wait
                        if silent >= self.timeout[1]:
                            raise socket.timeout()
                        yield []
                        continue
                    silent = 0.0
                    data = fp.read1(65536 if left is None else min(left, 65536))
                if not data:  # EOF: the socket was readable and gave nothing
                    if dechunk is not None or left:
                        raise requests.exceptions.ChunkedEncodingError()
                    break
                if left is not None:
                    left -= len(data)
                if dechunk is not None:
                    data = dechunk.feed(data)
                batch = lines.feed(data)
                if batch:
                    yield batch
                if left == 0 or (dechunk is not None and dechunk.done):
                    break
                data = None
            rest = lines.rest()
            if rest is not None:
                yield [rest]


class PendingStream:
    """A streamed upstream request: its headers, then its NDJSON batches."""

    def __init__(self, client: OllamaClient, future: "Future") -> None:
        self._client = client
        self._future = future

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
        """Yield what :meth:`OllamaClient.iter_batches` yields, after the headers.

        Until they arrive, an empty list is yielded every ``idle`` seconds.
        """
        while not self.wait(idle):
            yield []
        for batch in self._client.iter_batches(self._future.result(), idle):
            yield batch

    def close(self) -> None:
        """Close the upstream response now, or as soon as it arrives."""
        self._future.add_done_callback(_close_response)


def _close_response(future: "Future") -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _read_nowait(fp: Any, sock: socket.socket, left: Optional[int]) -> Optional[bytes]:
    """Return the bytes available at once on a buffered socket file, or ``None``."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # read1 then returns b"" instead of blocking
    try:
        data = fp.read1(65536 if left is None else min(left, 65536))
    finally:
        sock.settimeout(timeout)
    return data or None
