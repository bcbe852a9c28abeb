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
    +-- UpstreamError (502): Ollama answered with an error, or garbage
    |   +-- UpstreamUnreachable (502): no connection could be made
    +-- UpstreamUnavailable (503): Ollama is busy; carries retry-after
    +-- UpstreamTimeout (504)

This module imports nothing from the rest of the package.
"""
from typing import Dict, Optional


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
        """Return the OpenAI error object for this error."""
        return {"error": {"message": self.message, "type": self.type,
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
