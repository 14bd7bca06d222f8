"""Where the API is, the key it is called with, and how its answers become values or errors.

Both clients hold one `Connection` and do only the I/O themselves: send, sleep, read lines.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from meshclient._errors import ApiError, ErrorBody, TransportError, error_class
from meshclient._retry import RetryPolicy

if TYPE_CHECKING:
    from meshclient._endpoints import Call

T = TypeVar("T")

API_PREFIX = "/api/mesh"
USER_AGENT = "meshclient/0.1.0"


class Secret:
    """An API key that never shows itself in a repr, a message or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the Authorization header only."""
        return self._value

    def redact(self, text: str) -> str:
        """The text with the key blanked out, should a server or a proxy ever echo it."""
        return text.replace(self._value, "[api key]") if self._value else text

    def __repr__(self) -> str:
        return "Secret('[api key]')"


def api_root(base_url: str) -> str:
    """The API's root URL: `localhost:8000` means http://localhost:8000/api/mesh."""
    text = base_url.strip()
    if not urlsplit(text).netloc:
        # urlsplit reads `localhost:8000` as the scheme `localhost`: a URL needs `//`.
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    text = text.rstrip("/")
    return text if text.endswith(API_PREFIX) else text + API_PREFIX


def ssl_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """What httpx takes for `verify`: a path names the CA file to trust."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


@dataclass(frozen=True)
class Connection:
    """What both clients share about the API they talk to: where, as whom, how patiently."""

    root: str
    secret: Secret = field(repr=False)
    timeout: float
    retry: RetryPolicy

    @classmethod
    def of(cls, base_url: str, api_key: str, *, timeout: float, retries: int) -> Connection:
        """A connection from what a user passes a client."""
        if not api_key or not api_key.strip():
            raise ValueError("api_key is required: every /api/mesh request needs one")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return cls(api_root(base_url), Secret(api_key.strip()), timeout, RetryPolicy(retries))

    def client_options(
        self, *, verify: bool | str | ssl.SSLContext, transport: object | None
    ) -> dict[str, Any]:
        """Keyword arguments for httpx.Client or httpx.AsyncClient."""
        return {
            "base_url": self.root,
            "headers": {
                "Authorization": f"Bearer {self.secret.reveal()}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            "timeout": self.timeout,
            "verify": ssl_context(verify),
            "transport": transport,
            # A redirect could carry the key to another server: Mesh never redirects the API.
            "follow_redirects": False,
        }

    def timeout_for(self, call: Call[Any]) -> httpx.Timeout:
        """A request's timeouts: a long poll may hold the answer for its `wait` seconds."""
        return httpx.Timeout(self.timeout, read=self.timeout + call.long_poll)

    def describe(self, method: str, path: str) -> str:
        """A request as error messages name it: `GET /api/mesh/networks/...`."""
        return f"{method} {urlsplit(self.root).path}{path}"

    def read(self, call: Call[T], response: httpx.Response, *, attempts: int) -> T:
        """The call's value from a final answer, or the ApiError the answer stands for."""
        if response.is_success or response.status_code == 304:
            return call.parse(response)
        raise self.error(call.method, call.path, response, attempts=attempts)

    def error(self, method: str, path: str, response: httpx.Response, *, attempts: int) -> ApiError:
        """The exception for an error answer (read in full), with the key blanked out."""
        body = _error_body(response)
        message = body.get("message") if body else None
        if not isinstance(message, str) or not message:
            text = response.text.strip()
            message = text[:200] if text and body is None else response.reason_phrase
        return error_class(response.status_code)(
            response.status_code,
            _redacted(body, self.secret) if body is not None else None,
            self.secret.redact(message),
            headers=response.headers,
            request=self.describe(method, path),
            attempts=attempts,
        )

    def unreachable(
        self, method: str, path: str, exc: Exception, *, attempts: int
    ) -> TransportError:
        """The exception for a connection that failed on every attempt."""
        reason = self.secret.redact(str(exc)) or type(exc).__name__
        request = self.describe(method, path)
        origin = self.root.removesuffix(API_PREFIX)
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        return TransportError(
            f"{request} failed at {origin}: {reason}{tries}",
            request=request,
            attempts=attempts,
        )


def is_transient(exc: BaseException) -> bool:
    """Whether a connection failure may pass when tried again: a refused, reset or timed-out
    connection may; a certificate the client does not trust will not."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps the ssl module's
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


def _error_body(response: httpx.Response) -> ErrorBody | None:
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None  # type: ignore[return-value]


def _redacted(value: Any, secret: Secret) -> Any:
    if isinstance(value, str):
        return secret.redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secret) for item in value]
    return value
