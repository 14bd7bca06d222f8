"""Clients that wait for a task as Mesh's clients do, over asyncio HTTP/1.1 on loopback.

Three ways to learn that a task has ended: a plain GET on a timer (the old way), the long
poll (`?wait=` with If-None-Match, then one full GET) and the task's event stream (whose final
event carries the result). A client holds one keep-alive connection, as a real one would, and
every wait is bounded by a timeout. An answer a client did not expect is raised as Unexpected
naming the request and the answer, for the suite to report as it came.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

FINAL = ("completed", "failed", "cancelled", "timed_out")
FINAL_EVENTS = {status: f"event: task.{status}\n".encode() for status in FINAL}
TASK = {"description": "Write the launch email for Mesh", "context": {"segment": "developers"}}
HELD = {**TASK, "auto_process": False}
# At most what the server allows (60 s); the clients' own timeouts are shorter.
LONG_POLL_S = 30


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    at: float  # time.perf_counter() once the whole answer was read
    wall: float = 0.0  # time.time() then, to hold against the times the server records

    def json(self) -> dict:
        return json.loads(self.body)


class Unexpected(Exception):
    """An answer no client expects: its request, status and the start of its body."""

    def __init__(self, request: str, answer: Answer) -> None:
        super().__init__(f"{request} -> {answer.status} {answer.body[:300]!r}")


class Connection:
    """One keep-alive connection that reads whole answers (sized, chunked or to the close)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(
        self, method: str, path: str, *, body: dict | None = None,
        headers: dict[str, str] | None = None, expect: tuple[int, ...] = (200,),
    ) -> Answer:  # fmt: skip
        """Send one request and read its whole answer; Unexpected unless its status is in
        `expect`."""
        status, head = await self._request(method, path, body, headers or {})
        if status in (204, 304):
            content = b""
        elif head.get("transfer-encoding", "").lower() == "chunked":
            content = b"".join([chunk async for chunk in self._chunks()])
        elif "content-length" in head:
            content = await self._reader().readexactly(int(head["content-length"]))
        else:
            content = await self._reader().read()
            self.close()
        if head.get("connection", "").lower() == "close":
            self.close()
        answer = Answer(status, head, content, time.perf_counter(), time.time())
        if status not in expect:
            raise Unexpected(f"{method} {path}", answer)
        return answer

    async def follow(self, path: str) -> str:
        """Read a task's event stream until the server ends it; the status it ended with."""
        status, head = await self._request("GET", path, None, {"Accept": "text/event-stream"})
        if status != 200 or head.get("transfer-encoding", "").lower() != "chunked":
            raise Unexpected(f"GET {path}", Answer(status, head, b"", time.perf_counter()))
        ended, tail = "", b""
        async for chunk in self._chunks():
            seen = tail + chunk
            ended = ended or next((s for s, m in FINAL_EVENTS.items() if m in seen), "")
            tail = seen[-32:]  # an event's name split across two chunks is still found
        if not ended:
            raise Unexpected(f"GET {path}", Answer(200, head, tail, time.perf_counter()))
        return ended

    async def _request(
        self, method: str, path: str, body: dict | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        reused = self.writer is not None
        try:
            return await self._exchange(method, path, body, headers)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            # gunicorn closes a connection idle past its keep-alive (2 s) and may do so just
            # as it is reused; that request never reached it, so it is sent once more.
            if reused and getattr(exc, "partial", b"") == b"":
                return await self._exchange(method, path, body, headers)
            raise

    async def _exchange(
        self, method: str, path: str, body: dict | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        content = json.dumps(body).encode() if body is not None else b""
        own = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}{own}"
            f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n".encode()
            + content
        )
        reader = self._reader()
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        head: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            head[name.strip().lower()] = value.strip()
        return status, head

    async def _chunks(self) -> AsyncIterator[bytes]:
        reader = self._reader()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            yield (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the end of the (empty) trailer

    def _reader(self) -> asyncio.StreamReader:
        if self.reader is None:
            raise ConnectionResetError("the connection was closed")
        return self.reader

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def submit(conn: Connection, tasks_path: str, body: dict) -> tuple[str, int]:
    """POST a task; its path and revision."""
    answer = await conn.send("POST", tasks_path, body=body, expect=(202,))
    return urlsplit(answer.headers["location"]).path, answer.json()["revision"]


async def by_polling(
    conn: Connection, location: str, _revision: int, every_s: float
) -> tuple[int, str]:
    """Plain GETs every `every_s` until the task has ended; the requests sent, its status."""
    sent = 0
    while True:
        sent += 1
        if (status := (await conn.send("GET", location)).json()["status"]) in FINAL:
            return sent, status
        await asyncio.sleep(every_s)


async def by_long_poll(
    conn: Connection, location: str, revision: int, _every_s: float
) -> tuple[int, str]:
    """Long polls of the summary until the task has ended (until=ended, as the Python client
    waits), then one full GET; the requests sent, its status."""
    sent, etag = 0, f'"{revision}"'
    while True:
        sent += 1
        answer = await conn.send(
            "GET", f"{location}?wait={LONG_POLL_S}&view=summary&until=ended",
            headers={"If-None-Match": etag}, expect=(200, 304),
        )  # fmt: skip
        if answer.status == 200:
            etag = answer.headers["etag"]
            if answer.json()["status"] in FINAL:
                break
    return sent + 1, (await conn.send("GET", location)).json()["status"]


async def by_stream(
    conn: Connection, location: str, _revision: int, _every_s: float
) -> tuple[int, str]:
    """The task's event stream to its end: one request, and the status it ended with."""
    return 1, await conn.follow(f"{location}/events")


Way = Callable[[Connection, str, int, float], Awaitable[tuple[int, str]]]
WAYS: dict[str, Way] = {"poll": by_polling, "long poll": by_long_poll, "stream": by_stream}


@dataclass
class Clients:
    """What clients waiting one way saw: each task's submit-to-result time, requests sent."""

    latencies_ms: list[float]
    requests: int
    seconds: float
    errors: list[str]
    not_completed: int = 0  # tasks that ended otherwise (failed, timed out)


async def wait_for_tasks(
    address: tuple[str, int], auth: dict[str, str], tasks_path: str, *,
    way: str, tasks: int, in_flight: int, every_s: float = 0.02, timeout: float = 120,
) -> Clients:  # fmt: skip
    """`in_flight` clients, each submitting a task and waiting for it `way`, until `tasks`
    tasks have been waited for. A task's latency runs from its submission to the result in
    the client's hands (the answer that showed the end, or the full GET after it)."""
    done = Clients([], 0, 0.0, [])
    numbers = iter(range(tasks))

    async def client() -> None:
        conn = Connection(*address, auth)
        try:
            for _ in numbers:
                started = time.perf_counter()
                try:
                    location, revision = await submit(conn, tasks_path, TASK)
                    sent, status = await asyncio.wait_for(
                        WAYS[way](conn, location, revision, every_s), timeout
                    )
                except (Unexpected, OSError, TimeoutError, asyncio.IncompleteReadError,
                        ValueError) as exc:  # fmt: skip
                    done.errors.append(f"{way}: {type(exc).__name__}: {exc}")
                    conn.close()
                    continue
                done.latencies_ms.append((time.perf_counter() - started) * 1000)
                done.requests += sent + 1
                done.not_completed += status != "completed"
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(in_flight)))
    done.seconds = time.perf_counter() - began
    return done


@dataclass(frozen=True)
class Wake:
    """How long after a change a waiting client learned of it, in ms, measured two ways."""

    after_answer_ms: float  # from the change's answer: below 0 if the waiter learned first
    after_record_ms: float  # from the time the change's event was recorded (its `at`)


async def wake_latencies(
    address: tuple[str, int], auth: dict[str, str], tasks_path: str, *,
    way: str, samples: int, settle_s: float = 0.05, every_s: float = 0.02,
) -> list[Wake]:  # fmt: skip
    """For each of `samples` held tasks: a client waits on it `way` ("long poll" or "poll"),
    another cancels it; how long after the cancel the waiter's answer showed it cancelled."""
    control, waiter = Connection(*address, auth), Connection(*address, auth)
    found = []
    try:
        for _ in range(samples):
            location, revision = await submit(control, tasks_path, HELD)
            if way == "long poll":
                waiting = asyncio.ensure_future(waiter.send(
                    "GET", f"{location}?wait={LONG_POLL_S}&view=summary&until=ended",
                    headers={"If-None-Match": f'"{revision}"'},
                ))  # fmt: skip
            else:
                waiting = asyncio.ensure_future(_poll_until_ended(waiter, location, every_s))
            await asyncio.sleep(settle_s)
            if waiting.done():
                raise RuntimeError(f"{way} on {location} answered before any change")
            cancelled = await control.send("POST", f"{location}/cancel", expect=(202,))
            answer = await asyncio.wait_for(waiting, LONG_POLL_S + 5)
            if answer.json()["status"] != "cancelled":
                raise Unexpected(f"GET {location} ({way})", answer)
            recorded = max(datetime.fromisoformat(h["at"]) for h in cancelled.json()["history"])
            found.append(Wake((answer.at - cancelled.at) * 1000,
                              (answer.wall - recorded.timestamp()) * 1000))  # fmt: skip
    finally:
        control.close()
        waiter.close()
    return found


async def _poll_until_ended(conn: Connection, location: str, every_s: float) -> Answer:
    while (answer := await conn.send("GET", location)).json()["status"] not in FINAL:
        await asyncio.sleep(every_s)
    return answer
