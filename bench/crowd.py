"""A crowd of clients waiting on held tasks at once, while plain GETs go on at a fixed rate.

The waiters are raw sockets, as tests/e2e/test_clients.py opens them: event streams, each read
up to its first event, and long polls of the summary, which answer nothing until their task
changes. The GETs are bench.loadgen's open loop, in the same event loop, so they are timed
from when each was due; they start once the API has settled (its CPU back near idle), so they
measure a crowd that waits, not one that arrives. At the end the held tasks are cancelled,
and every waiter must answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bench.loadgen import rate_events, run_open_loop
from bench.processes import Proc
from bench.waiters import HELD, Connection, submit

OPEN_TIMEOUT_S, ANSWER_TIMEOUT_S = 30, 30
# Longer than the crowd is held: a long poll answering 304 would not be waiting.
WAIT_S = 60
# A waiter looks at its task's revision every 5 s even when nothing woke it
# (meshcore/adapters/redis_revisions.py), so the crowd's idle CPU comes in bursts: it is
# read over one whole period.
IDLE_S = 5.0


@dataclass
class Waiter:
    kind: str  # "stream" or "long poll"
    location: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Crowd:
    """What the reads saw while the crowd waited, and how the crowd was answered."""

    reads: dict
    rss_mb: float  # the API's, while the crowd waited
    idle_cores: float  # the API's CPU while the crowd waited and nothing else happened
    answered: dict[str, int] = field(default_factory=lambda: {"stream": 0, "long poll": 0})
    errors: list[str] = field(default_factory=list)


async def reads_alone(api: Proc, read_spec: dict) -> dict:
    """The GETs of `read_spec` (a loadgen rate spec), once the API has settled and after a
    second of warm-up; their tally."""
    await asyncio.to_thread(api.settle)
    await run_open_loop({**read_spec, "duration": 1.0}, rate_events({**read_spec, "duration": 1.0}))
    return (await run_open_loop(read_spec, rate_events(read_spec)))["kinds"]["get"]


async def idle_cores(api: Proc) -> float:
    """The API's CPU, in cores, over IDLE_S seconds in which no client sends anything."""
    before = api.cpu_seconds()
    await asyncio.sleep(IDLE_S)
    return (api.cpu_seconds() - before) / IDLE_S


async def reads_in_crowd(
    api: Proc, address: tuple[str, int], auth: dict[str, str], tasks_path: str, *,
    held: int, streams: int, polls: int, read_spec: dict,
) -> Crowd:  # fmt: skip
    """Hold `streams` event streams and `polls` long polls on `held` held tasks, run the
    GETs of `read_spec`, then cancel the tasks and read every waiter's answer."""
    control = Connection(*address, auth)
    try:
        tasks = [await submit(control, tasks_path, HELD) for _ in range(held)]
        waiters = await _gather(address, auth, tasks, streams, polls)
        try:
            crowd = Crowd(await reads_alone(api, read_spec), api.rss_mb(), await idle_cores(api))
            for waiter in waiters:
                if waiter.reader.at_eof():
                    crowd.errors.append(f"{waiter.kind} on {waiter.location} closed early")
            for location, _ in tasks:
                await control.send("POST", f"{location}/cancel", expect=(202,))
            for waiter in waiters:
                await _answer(waiter, crowd)
        finally:
            for waiter in waiters:
                waiter.writer.close()
    finally:
        control.close()
    return crowd


async def _gather(
    address: tuple[str, int], auth: dict[str, str], tasks: list[tuple[str, int]],
    streams: int, polls: int,
) -> list[Waiter]:  # fmt: skip
    host, port = address
    lines = "".join(f"{name}: {value}\r\n" for name, value in auth.items())
    waiters = []
    for i in range(streams + polls):
        location, revision = tasks[i % len(tasks)]
        if i < streams:
            kind, target, condition = "stream", f"{location}/events", ""
        else:
            kind, target = "long poll", f"{location}?wait={WAIT_S}&view=summary"
            condition = f'If-None-Match: "{revision}"\r\n'
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{lines}{condition}\r\n"
        reader, writer = await asyncio.open_connection(host, port, limit=2**20)
        writer.write(request.encode())
        waiters.append(Waiter(kind, location, reader, writer))
    # Every stream is open once it has sent its first event.
    for waiter in waiters:
        if waiter.kind == "stream":
            head = await asyncio.wait_for(waiter.reader.readuntil(b"\nevent: "), OPEN_TIMEOUT_S)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {waiter.location}/events -> {head[:300]!r}")
    return waiters


async def _answer(waiter: Waiter, crowd: Crowd) -> None:
    wanted = b"event: task.cancelled" if waiter.kind == "stream" else b'"status":"cancelled"'
    try:
        answer = await asyncio.wait_for(waiter.reader.readuntil(wanted), ANSWER_TIMEOUT_S)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        crowd.errors.append(f"{waiter.kind} on {waiter.location}: {type(exc).__name__}")
        return
    # A stream's head came with its first event; a long poll's comes with its answer.
    if waiter.kind == "long poll" and not answer.startswith(b"HTTP/1.1 200"):
        crowd.errors.append(f"long poll on {waiter.location} -> {answer[:300]!r}")
        return
    crowd.answered[waiter.kind] += 1
