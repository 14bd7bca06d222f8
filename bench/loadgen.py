"""A bounded asyncio HTTP/1.1 load generator, run as its own process: `python -m bench.loadgen`.

It reads a JSON spec on stdin and prints a JSON summary on stdout. Three modes:
  rate      open loop: requests are sent on a fixed schedule, whatever the server's pace
  saturate  closed loop: each connection sends its next request as soon as it has an answer
  users     open loop: simulated users, each polling its latest task and submitting now and then
            (with "conditional", each poll names the ETag the user last saw: 304 while unchanged;
            with "tenants", user u calls as tenant u mod len(tenants), with that tenant's key;
            with "wait", users do not poll: after each submit, a user waits for its task as the
            Python client does, a long poll until it has ended, then one full GET)

Open-loop latency is measured from the time a request was *due*, not from when a connection
was free to send it, so that a slow server cannot hide its queue (coordinated omission).
Connections are a bounded keep-alive pool; the client's own CPU time is reported, because on
a 2-core machine the client competes with the server for the same cores. A spec's optional
"headers" (e.g. Authorization) go with every request; a request's own "headers" (e.g.
If-None-Match) with that request alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Request:
    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: str = ""  # header lines of this request alone, each ending in CRLF


# Answers that are a refusal with a time to come back (admission control, rate limits): an
# overloaded Mesh should answer these, early, instead of slow answers or timeouts.
REFUSALS = (429, 503)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0  # no answer, a 5xx, a 4xx, or a refusal without Retry-After
    refused: int = 0  # a 429 or 503 with Retry-After
    refused_latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self, seconds: float) -> dict[str, object]:
        ordered = sorted(self.latencies)

        def q(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

        done = len(ordered)
        attempted = done + self.statuses.get(0, 0)  # 0: no answer (refused, timed out, unsent)
        return {
            "count": done,
            "attempted": attempted,
            "errors": self.errors,
            "error_rate": self.errors / attempted if attempted else 1.0,
            "refused": self.refused,
            "refused_p99_ms": sorted(self.refused_latencies)[
                min(len(self.refused_latencies) - 1, int(0.99 * len(self.refused_latencies)))
            ] if self.refused_latencies else 0.0,
            "rps": done / seconds,
            "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": ordered[-1] if ordered else 0.0,
            "statuses": dict(self.statuses),
        }  # fmt: skip


class Connection:
    """One keep-alive connection; reconnects when the server has closed it."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.body = b""  # the last answer's

    async def request(self, req: Request) -> tuple[int, dict[str, str]]:
        reused = self.writer is not None
        try:
            return await self._exchange(req)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            # The server may close an idle keep-alive connection just as we reuse it; that
            # request never reached it, so it is sent again once, on a fresh connection.
            if reused and getattr(exc, "partial", b"") == b"":
                return await self._exchange(req)
            raise

    async def _exchange(self, req: Request) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{req.method} {req.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}{req.headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + req.body)
        status_line = await self.reader.readuntil(b"\r\n")
        if not status_line:
            raise ConnectionResetError("closed before answering")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _send(conn: Connection, req: Request, due: float, tally: Tally) -> dict[str, str]:
    try:
        status, headers = await asyncio.wait_for(conn.request(req), TIMEOUT_S)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        conn.close()
        tally.errors += 1
        tally.statuses[0] += 1
        return {}
    tally.statuses[status] += 1
    latency = (time.perf_counter() - due) * 1000
    if status in REFUSALS and "retry-after" in headers:
        tally.refused += 1
        tally.refused_latencies.append(latency)
        return headers
    if status >= 400:
        tally.errors += 1
    tally.latencies.append(latency)
    return headers


FINAL = (b'"completed"', b'"failed"', b'"cancelled"', b'"timed_out"')


async def _wait_for(conn: Connection, path: str, etag: str, auth: str, tally: Tally) -> None:
    """Long-poll a task until it has ended, then read it whole: one latency for the lot, from
    the submit's answer to the whole task; an error or no answer counts once."""
    started = time.perf_counter()
    poll = f"{path}?wait=30&view=summary&until=ended"
    try:
        while True:
            own = f"{auth}If-None-Match: {etag}\r\n"
            waited = Request("wait", "GET", poll, headers=own)
            status, headers = await asyncio.wait_for(conn.request(waited), 30 + TIMEOUT_S)
            if status not in (200, 304):
                raise ValueError(f"a long poll answered {status}")
            etag = headers.get("etag", etag)
            if status == 200 and any(b'"status":' + s in conn.body for s in FINAL):
                break
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        conn.close()
        tally.errors += 1
        tally.statuses[0] += 1
        return
    await _send(conn, Request("wait", "GET", path, headers=auth), started, tally)


async def run_open_loop(spec: dict, events: list[tuple[float, int, Request]]) -> dict:
    """Send each (offset, user, request) when due, over a bounded pool of connections."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    latest: dict[int, str] = {}  # a user's latest task, from its last submission's Location
    etags: dict[int, str] = {}  # the ETag each user last saw of it
    accepted: list[str] = []  # every task a submission was answered 202 for
    queue: asyncio.Queue = asyncio.Queue()
    lag: list[float] = []
    conditional = spec.get("conditional", False)
    tenants = spec.get("tenants") or []
    for user in range(spec.get("users", 0)) if conditional and tenants else ():
        # A user polls a task it has seen: it knows that task's ETag from the start.
        tenant = tenants[user % len(tenants)]
        if known := tenant.get("poll_etags"):
            etags[user] = known[user // len(tenants) % len(known)]

    async def connection_loop() -> None:
        conn = Connection(spec["host"], spec["port"], spec.get("headers"))
        while True:
            item = await queue.get()
            if item is None:
                conn.close()
                return
            due, user, req = item
            if req.kind == "poll" and user in latest:
                req = Request("poll", "GET", latest[user], headers=req.headers)
            if req.kind == "poll" and conditional and user in etags:
                own = f"If-None-Match: {etags[user]}\r\n"
                req = Request("poll", "GET", req.path, headers=req.headers + own)
            headers = await _send(conn, req, due, tallies[req.kind])
            if req.kind == "submit" and "location" in headers:
                latest[user] = urlsplit(headers["location"]).path
                accepted.append(latest[user])
                etags.pop(user, None)
            if "etag" in headers:
                etags[user] = headers["etag"]
            if req.kind == "submit" and spec.get("wait") and user in etags:
                await _wait_for(conn, latest[user], etags[user], req.headers, tallies["wait"])

    loops = [asyncio.create_task(connection_loop()) for _ in range(spec["connections"])]
    start = time.perf_counter()
    for offset, user, req in events:
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        lag.append(max(0.0, time.perf_counter() - due) * 1000)
        queue.put_nowait((due, user, req))
    for _ in loops:
        queue.put_nowait(None)
    await asyncio.wait(loops, timeout=TIMEOUT_S)
    # What a saturated server left unsent past the timeout counts as failed, as a client
    # that gave up would count it; the rest of the backlog is not waited for.
    unsent = 0
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None:
            unsent += 1
            tallies[item[2].kind].errors += 1
            tallies[item[2].kind].statuses[0] += 1
    for loop in loops:
        loop.cancel()
    seconds = time.perf_counter() - start
    return _result(tallies, seconds, unsent=unsent, lag=lag, accepted=accepted)


async def run_saturate(spec: dict, requests: list[Request]) -> dict:
    tallies: dict[str, Tally] = defaultdict(Tally)
    stop_at = time.perf_counter() + spec["duration"]

    async def connection_loop(i: int) -> None:
        conn = Connection(spec["host"], spec["port"], spec.get("headers"))
        n = i
        while time.perf_counter() < stop_at:
            req = requests[n % len(requests)]
            n += spec["connections"]
            await _send(conn, req, time.perf_counter(), tallies[req.kind])
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection_loop(i) for i in range(spec["connections"])))
    return _result(tallies, time.perf_counter() - start)


def _result(tallies: dict[str, Tally], seconds: float, **extra: object) -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    lag = extra.pop("lag", None)
    out = {
        "seconds": seconds,
        "client_cpu_s": cpu,
        "client_cores": cpu / seconds,
        "kinds": {k: t.summary(seconds) for k, t in tallies.items()},
        **extra,
    }
    if lag:
        ordered = sorted(lag)
        out["schedule_lag_p99_ms"] = ordered[int(0.99 * (len(ordered) - 1))]
    return out


def _requests(spec: dict) -> list[Request]:
    return [
        Request(
            r["kind"], r["method"], r["path"],
            json.dumps(r["body"]).encode() if "body" in r else b"",
            "".join(f"{name}: {value}\r\n" for name, value in r.get("headers", {}).items()),
        )
        for r in spec["requests"]
    ]  # fmt: skip


def rate_events(spec: dict) -> list[tuple[float, int, Request]]:
    requests, step = _requests(spec), 1.0 / spec["rate"]
    count = int(spec["rate"] * spec["duration"])
    return [(i * step, i, requests[i % len(requests)]) for i in range(count)]


def user_events(spec: dict) -> list[tuple[float, int, Request]]:
    """Each user polls every poll_every s and submits every submit_every s, at random phases."""
    rng = random.Random(7)
    body = json.dumps(spec["submit_body"]).encode()
    tenants = spec.get("tenants") or [
        {"poll_paths": spec["poll_paths"], "submit_path": spec["submit_path"], "headers": {}}
    ]
    events = []
    for user in range(spec["users"]):
        tenant = tenants[user % len(tenants)]
        own = "".join(f"{name}: {value}\r\n" for name, value in tenant["headers"].items())
        polls = tenant["poll_paths"]
        poll = Request("poll", "GET", polls[user // len(tenants) % len(polls)], headers=own)
        submit = Request("submit", "POST", tenant["submit_path"], body, headers=own)
        t = rng.uniform(0, spec["poll_every"])
        while t < spec["duration"] and not spec.get("wait"):
            events.append((t, user, poll))
            t += spec["poll_every"]
        t = rng.uniform(0, spec["submit_every"])
        while t < spec["duration"]:
            events.append((t, user, submit))
            t += spec["submit_every"]
    events.sort(key=lambda e: e[0])
    return events


def drive(spec: dict) -> dict:
    """Run a load from a second process and answer its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=spec["duration"] + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr.decode()[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    spec = json.load(sys.stdin)
    mode = spec["mode"]
    if mode == "saturate":
        result = asyncio.run(run_saturate(spec, _requests(spec)))
    elif mode == "rate":
        result = asyncio.run(run_open_loop(spec, rate_events(spec)))
    elif mode == "users":
        result = asyncio.run(run_open_loop(spec, user_events(spec)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    json.dump(result, sys.stdout)
    sys.stdout.flush()
    os._exit(0)  # no waiting on connections a saturated server has not closed


if __name__ == "__main__":
    main()
