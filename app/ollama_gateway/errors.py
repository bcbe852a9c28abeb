"""OpenAI-shaped errors.

Every failure the gateway reports is an :class:`APIError`. The HTTP status, the
OpenAI ``type`` and the default ``code`` live on the class, so raising the right
subclass is all a caller does; :meth:`APIError.to_body` renders the one body
shape OpenAI clients parse: ``{"error": {"message", "type", "param", "code"}}``.

Exception tree::

    APIError (500 server_error)
    +-- InvalidRequest (400 invalid_request_error)
    +-- AuthenticationFailed (401)
    +-- NotFound (404)
    |   +-- ModelNotFound (404, code model_not_found)
    +-- MethodNotAllowed (405)
    +-- RequestTooLarge (413)
    +-- UnsupportedMediaType (415, code unsupported_content_encoding)
    +-- UpstreamError (502): Ollama answered with an error, or garbage
    |   +-- UpstreamUnreachable (502): no connection could be made
    +-- UpstreamUnavailable (503): Ollama is busy; carries retry-after
    +-- UpstreamTimeout (504)

This module imports nothing from the rest of the package.
"""
from typing import Dict, Optional

#: The longest message a body carries: the last bound on client input a
#: message repeats (each echo is cut shorter where it is made).
MAX_MESSAGE = 1000


class APIError(Exception):
    """An error with an HTTP status and an OpenAI error body."""

    status = 500
    type = "server_error"
    code = None  # type: Optional[str]
    #: Whether a client should retry. ``False`` adds ``x-should-retry: false``,
    #: which the official SDKs honour before their own 5xx retry rule.
    retryable = None  # type: Optional[bool]
    retry_after = None  # type: Optional[int]

    def __init__(self, message: str, param: Optional[str] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> Dict[str, dict]:
        """Return the OpenAI error object, its message at most ``MAX_MESSAGE`` characters."""
        message = self.message if len(self.message) <= MAX_MESSAGE else (
            self.message[:MAX_MESSAGE - 1] + "\u2026")
        return {"error": {"message": message, "type": self.type,
                          "param": self.param, "code": self.code}}

    def headers(self) -> Dict[str, str]:
        """Return the response headers that steer client retries."""
        out = {}
        if self.retryable is not None:
            out["x-should-retry"] = "true" if self.retryable else "false"
        if self.retry_after is not None:
            out["retry-after"] = str(self.retry_after)
        return out


class InvalidRequest(APIError):
    """The request can never succeed as sent."""

    status = 400
    type = "invalid_request_error"
    retryable = False


class AuthenticationFailed(APIError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    retryable = False


class NotFound(APIError):
    status = 404
    type = "invalid_request_error"
    retryable = False


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(APIError):
    status = 405
    type = "invalid_request_error"
    retryable = False


class RequestTooLarge(APIError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"
    retryable = False


class UnsupportedMediaType(APIError):
    """The request body comes in a content coding the gateway cannot undo."""

    status = 415
    type = "invalid_request_error"
    code = "unsupported_content_encoding"
    retryable = False

    def __init__(self, message: str, param: Optional[str] = None,
                 code: Optional[str] = None, accept_encoding: Optional[str] = None) -> None:
        super().__init__(message, param=param, code=code)
        self.accept_encoding = accept_encoding

    def headers(self) -> Dict[str, str]:
        """Return the retry headers and, if known, the codings we accept.

        RFC 7694: a 415 for a request's content coding names the accepted ones
        in ``Accept-Encoding``, so a client can send the body another way.
        """
        out = super().headers()
        if self.accept_encoding is not None:
            out["Accept-Encoding"] = self.accept_encoding
        return out


class UpstreamError(APIError):
    """Ollama failed in a way a retry is unlikely to fix."""

    status = 502
    code = "upstream_error"
    retryable = False


class UpstreamUnreachable(UpstreamError):
    """No connection to Ollama; worth retrying once it is back."""

    code = "upstream_unreachable"
    retryable = True


class UpstreamUnavailable(APIError):
    status = 503
    code = "upstream_busy"
    retryable = True
    retry_after = 1


class UpstreamTimeout(APIError):
    status = 504
    code = "upstream_timeout"
    # A retry would start the same long generation again from the top.
    retryable = False
