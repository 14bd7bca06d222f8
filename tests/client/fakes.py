"""A scripted Mesh API for the client's tests: it answers requests in order and keeps them."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

BASE_URL = "http://mesh.test:8000"
API_KEY = "mesh_0123456789abcdef_s3cr3t-s3cr3t-s3cr3t"
NETWORK_ID = "3f1d2c4b-0000-4000-8000-000000000001"
TASK_ID = "3f1d2c4b-0000-4000-8000-000000000002"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedApi:
    """Answers each request with the next answer of its script; an exception is raised."""

    def __init__(self, *answers: Answer) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"code": status, "status": "Error", "message": message, "errors": {}}
    return httpx.Response(status, json=body, headers=headers)


def task(status: str = "queued", revision: int = 1, **fields: object) -> dict[str, object]:
    return {
        "id": TASK_ID,
        "network_id": NETWORK_ID,
        "description": "Write the launch email",
        "context": {},
        "priority": "normal",
        "status": status,
        "iteration": 1,
        "result": None,
        "error": None,
        "usage": {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0},
        "subtasks": [],
        "history": [],
        "revision": revision,
        **fields,
    }


def summary(status: str, revision: int) -> httpx.Response:
    body = {
        "id": TASK_ID,
        "network_id": NETWORK_ID,
        "status": status,
        "revision": revision,
        "progress": {"done": 0, "planned": 2},
        "iteration": 1,
        "wave": 1,
        "answer": None,
        "score": None,
    }
    return httpx.Response(200, json=body, headers={"ETag": f'"{revision}"'})


def untrusted_certificate() -> httpx.ConnectError:
    """The error httpx raises for a server whose certificate the client does not trust."""
    reason = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    error = httpx.ConnectError(reason)
    error.__cause__ = ssl.SSLCertVerificationError(1, reason)
    return error


def sse_event(event_id: int, kind: str, data: dict[str, object]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


def event_stream(text: str, *, then: Exception | None = None) -> httpx.Response:
    """A text/event-stream answer (sync) that ends, or breaks with `then`, after `text`."""

    def chunks() -> Iterator[bytes]:
        # Split mid-line too: a real connection delivers bytes, not lines.
        data = text.encode()
        for start in range(0, len(data), 7):
            yield data[start : start + 7]
        if then is not None:
            raise then

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())


def async_event_stream(text: str, *, then: Exception | None = None) -> httpx.Response:
    """The same answer for an httpx.AsyncClient."""

    async def chunks() -> AsyncIterator[bytes]:
        data = text.encode()
        for start in range(0, len(data), 7):
            yield data[start : start + 7]
        if then is not None:
            raise then

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=chunks())
