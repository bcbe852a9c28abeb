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
from typing import Any, Dict, Iterator, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from .errors import (APIError, InvalidRequest, ModelNotFound, UpstreamError,
                     UpstreamTimeout, UpstreamUnavailable, UpstreamUnreachable)

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


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
        except requests.exceptions.ChunkedEncodingError as exc:
            raise UpstreamError("The connection to Ollama at %s broke mid-response."
                                % self.base_url) from exc
        except requests.ConnectionError as exc:
            # requests wraps a read timeout inside a streamed body this way.
            if exc.args and isinstance(exc.args[0], ReadTimeoutError):
                raise UpstreamTimeout("Ollama at %s sent nothing for %g seconds."
                                      % (self.base_url, self.timeout[1])) from exc
            raise UpstreamUnreachable("Could not connect to Ollama at %s." % self.base_url) from exc
        except ValueError as exc:
            raise UpstreamError("Ollama at %s sent invalid JSON." % self.base_url) from exc

    def _check(self, resp: requests.Response) -> requests.Response:
        error = error_for_status(resp)
        if error is not None:
            resp.close()
            raise error
        return resp

    def get_json(self, path: str) -> Dict[str, Any]:
        """Return the decoded JSON body of ``GET path``."""
        with self._mapped():
            resp = self.session.get(self.base_url + path, timeout=self.timeout)
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
                                     headers=_JSON_HEADERS, timeout=self.timeout, stream=True)
            return self._check(resp)

    def iter_ndjson(self, resp: requests.Response) -> Iterator[Dict[str, Any]]:
        """Yield the objects of a native NDJSON stream as each line completes.

        :raises UpstreamError: for an ``{"error": ...}`` line (Ollama reports
            failures after the 200 this way), invalid JSON or a broken body.
        """
        pending = b""
        with self._mapped():
            # chunk_size=None yields each HTTP chunk as it arrives; lines may
            # still be split across chunks or packed together.
            for piece in resp.iter_content(chunk_size=None):
                if pending:
                    piece = pending + piece
                lines = piece.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield _decode_line(line)
            if pending.strip():
                yield _decode_line(pending)


def _decode_line(line: bytes) -> Dict[str, Any]:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise UpstreamError("Ollama sent an unexpected stream line.")
    if "error" in obj:
        raise UpstreamError("Ollama reported an error: %s" % obj["error"])
    return obj
