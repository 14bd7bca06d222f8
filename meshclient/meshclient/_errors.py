"""Every exception meshclient raises on purpose.

MeshError
  ├ ApiError              the API answered with an error: .status, .body, .message, .headers
  │  ├ BadRequest         400 or 415: the request was malformed, or not sent as JSON
  │  ├ Unauthorized       401: no key, or an unknown, revoked or malformed one
  │  ├ Forbidden          403: the key lacks the scope this needs
  │  ├ NotFound           404: no such network, agent, task, item or key (or another tenant's)
  │  ├ Conflict           409: the current state forbids it (a task that already ended)
  │  ├ Unprocessable      422: a rule or quota refused the body, or an idempotency key reused
  │  ├ RateLimited        429: too many requests or tasks in flight; .retry_after
  │  └ ServerError        5xx: .retry_after when the server said when to come back
  ├ TransportError        the API could not be reached, after every retry
  ├ ProtocolError         an answer was not what Mesh sends (not JSON, an event with no id)
  └ WaitTimeout           the task had not ended when the wait ran out (also a TimeoutError)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict


class ErrorBody(TypedDict, total=False):
    """The JSON of every error Mesh answers."""

    code: int
    status: str
    message: str
    errors: dict[str, object]


class MeshError(Exception):
    """Base of every error meshclient raises on purpose."""


class ApiError(MeshError):
    """The API answered with an error status."""

    def __init__(
        self,
        status: int,
        body: ErrorBody | None,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        request: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(status, body, message)
        self.status = status
        self.body = body
        self.message = message
        # The answer's headers (never the request's, which hold the key).
        self.headers: Mapping[str, str] = dict(headers or {})
        self.request = request
        self.attempts = attempts

    @property
    def errors(self) -> dict[str, object]:
        """What the API said about each field, as `{location: {field: [problems]}}`."""
        return dict((self.body or {}).get("errors") or {})

    def __str__(self) -> str:
        where = f"{self.request} answered " if self.request else ""
        details = f" {self.errors}" if self.errors else ""
        return f"{where}{self.status}: {self.message}{details}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class BadRequest(ApiError):
    """400 or 415: the request was malformed, or its body not sent as JSON."""


class Unauthorized(ApiError):
    """401: the API refused the key."""


class Forbidden(ApiError):
    """403: the key lacks the scope the request needs."""


class NotFound(ApiError):
    """404: no such resource in the key's tenant."""


class Conflict(ApiError):
    """409: the resource's current state forbids the request."""


class Unprocessable(ApiError):
    """422: the body broke a rule or a quota, or reused an idempotency key with another body."""


class RetryableError(ApiError):
    """An error the API may stop answering later, when it says when in Retry-After."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the API asked to wait before trying again, if it said."""
        return retry_after(self.headers)


class RateLimited(RetryableError):
    """429: too many requests for the key, or too many tasks in flight for the tenant."""


class ServerError(RetryableError):
    """5xx: the API could not serve the request (503: a dependency is down)."""


class TransportError(MeshError):
    """The API could not be reached (connection refused, reset, timed out) after every retry."""

    def __init__(self, message: str, *, request: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.request = request
        self.attempts = attempts


class ProtocolError(MeshError):
    """An answer was not what Mesh sends: not JSON, or an event without an integer id."""


class WaitTimeout(MeshError, TimeoutError):
    """The task had not ended when the wait ran out; it goes on running on the server."""

    def __init__(self, task_id: str, status: str, timeout: float) -> None:
        super().__init__(f"task {task_id} still {status} after {timeout:g} s")
        self.task_id = task_id
        self.status = status
        self.timeout = timeout


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    415: BadRequest,
    422: Unprocessable,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The exception that stands for an error status."""
    if status >= 500:
        return ServerError
    return BY_STATUS.get(status, ApiError)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The seconds of a Retry-After header; None when absent or not a number of seconds."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        # Mesh sends seconds; an HTTP date (from a proxy) falls back to the client's backoff.
        return None
    return seconds if seconds >= 0 else None
