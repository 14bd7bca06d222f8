"""Webhook deliveries over HTTP, with the SSRF rule: a receiver's host is resolved once, every
address it resolves to is checked, and the request connects to the address that was checked
(the URL carries the IP; the Host header and TLS's SNI and certificate check carry the name),
so a DNS answer that changes between the check and the connection cannot redirect it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from meshcore.domain.webhooks import Attempt, is_refused_address, url_problem

Resolve = Callable[[str, int], list[str]]
MAX_ERROR = 300


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (OSError if none)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class HttpWebhookSender:
    def __init__(
        self, *, allow_private: bool, timeout_seconds: float, resolver: Resolve = resolve
    ) -> None:
        self._allow_private, self._timeout, self._resolve = (
            allow_private,
            timeout_seconds,
            resolver,
        )

    def refusal(self, url: str) -> str | None:
        if problem := url_problem(url):
            return problem
        _, _, refused = self._checked(urlsplit(url))
        return refused

    def send(self, url: str, *, body: str, headers: dict[str, str]) -> Attempt:
        started = time.perf_counter()
        parts = urlsplit(url)
        address, port, refused = self._checked(parts)
        if refused is not None or address is None:
            return Attempt(None, _since(started), refused)
        host = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            # trust_env off: no proxy from the environment may stand between the check and
            # the receiver; no redirects: a redirect would go unchecked.
            with httpx.Client(
                timeout=self._timeout, follow_redirects=False, trust_env=False
            ) as client:
                response = client.post(
                    target,
                    content=body.encode(),
                    headers={**headers, "host": parts.netloc},
                    extensions=extensions,
                )
        except httpx.HTTPError as exc:
            return Attempt(None, _since(started), f"{type(exc).__name__}: {exc}"[:MAX_ERROR])
        code = response.status_code
        error = None if 200 <= code < 300 else f"the receiver answered {code}"
        return Attempt(code, _since(started), error)

    def _checked(self, parts: SplitResult) -> tuple[str | None, int, str | None]:
        """The address to connect to, the port, and why it is refused (or None)."""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        try:
            addresses = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            return None, port, f"host {host!r} does not resolve ({type(exc).__name__})"
        if not addresses:
            return None, port, f"host {host!r} does not resolve"
        refused = [a for a in addresses if is_refused_address(a, allow_private=self._allow_private)]
        if refused:
            return (
                None,
                port,
                f"host {host!r} resolves to {refused[0]}, a loopback, private, link-local or "
                "metadata address Mesh does not call (MESH_WEBHOOK_ALLOW_PRIVATE=true allows it)",
            )
        return addresses[0], port, None


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
