"""Memory of the fleet `mesh serve` starts: at idle, and over a sustained load (10 minutes;
one in --quick) that it can keep up with, sampled as it runs.

The load is the users mix (bench.users) at USERS users: each polls its latest task every 5 s
with If-None-Match and submits a task every 10 minutes, about USERS / 600 tasks a second,
within what two cores run, so the memory seen is that of a fleet at work, not of a backlog.
Every role's proportional set size (PSS) is sampled every SAMPLE_S seconds. Flat means the
last stretch of the load holds no more than the first stretch after warm-up: a leak, or a
cache without a bound, grows between the two.
"""

from __future__ import annotations

import statistics
import threading
import time

from bench.report import Figure, publish
from bench.sampling import Sampler
from bench.served import Served, drained, pss_target, served, tenant_keys
from bench.session import Session
from bench.users import simulate, tenants_of

USERS, TENANTS = 2_000, 10
SAMPLE_S = 10.0
GROWTH_LIMIT = 0.10  # the last stretch at most 10 % above the first: flat, within noise


class Memory(Sampler):
    """Every role's PSS, every `interval` seconds, with when it was read."""

    def __init__(self, fleet: Served, interval: float) -> None:
        super().__init__()
        self.fleet, self.interval = fleet, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._lock = threading.Lock()

    def sample(self) -> None:
        reading = self.fleet.memory_by_role()
        with self._lock:
            self.samples.append((time.monotonic(), reading))


def stretches(samples: list[tuple[float, dict[str, float]]], fraction: float) -> tuple[
    dict[str, float], dict[str, float], dict[str, float]
]:  # fmt: skip
    """Each role's mean over the first and the last `fraction` of the samples (the first
    sample left out: warm-up), and its peak over all of them."""
    readings = [r for _, r in samples[1:]] or [r for _, r in samples]
    n = max(1, int(len(readings) * fraction))
    roles = sorted({role for r in readings for role in r})

    def mean(part: list[dict[str, float]], role: str) -> float:
        return statistics.fmean(r.get(role, 0.0) for r in part)

    first = {role: mean(readings[:n], role) for role in roles}
    last = {role: mean(readings[-n:], role) for role in roles}
    peak = {role: max(r.get(role, 0.0) for r in readings) for role in roles}
    return first, last, peak


def run(session: Session) -> list[Figure]:
    session.stop_fleet()
    session.stop_api()
    seconds = 60 if session.quick else 600
    keys = tenant_keys(session.servers, TENANTS, prefix="footprint-")
    with served(session.servers) as fleet:
        tenants = tenants_of(fleet, keys)
        time.sleep(3)
        idle = fleet.memory_by_role()
        with Memory(fleet, SAMPLE_S if not session.quick else 5.0) as memory:
            result = simulate(fleet, tenants, USERS, seconds, "poll", 600)
        drain_s, lost = drained(session.servers, result["accepted"], 600)
    return figures(idle, memory.samples, result, seconds, drain_s, lost)


def figures(
    idle: dict[str, float], samples: list[tuple[float, dict[str, float]]], result: dict,
    seconds: float, drain_s: float, lost: int,
) -> list[Figure]:  # fmt: skip
    first, last, peak = stretches(samples, 0.2)
    found = []
    for role in sorted(idle):
        limit = pss_target(role)
        found.append(Figure(f"idle PSS: {role}", idle[role], limit or 0.0, "MiB",
                            "baseline: the target" if limit else "",
                            f"<= {limit:.0f}" if limit else "",
                            idle[role] <= limit if limit else None))  # fmt: skip
    minutes = seconds / 60
    for role in sorted(first):
        growth = last[role] / first[role] - 1 if first[role] else 0.0
        found.append(Figure(
            f"{minutes:.0f} min of load: {role} PSS, last vs first fifth", last[role],
            first[role], "MiB",
            f"baseline: the first fifth after warm-up; peak {peak[role]:.0f} MiB, "
            f"{len(samples)} samples", f"growth <= {GROWTH_LIMIT:.0%}",
            growth <= GROWTH_LIMIT,
        ))  # fmt: skip
    total_first, total_last = sum(first.values()), sum(last.values())
    found.append(Figure(f"{minutes:.0f} min of load: the whole fleet's PSS, last vs first",
                        total_last, total_first, "MiB", "baseline: the first fifth",
                        f"growth <= {GROWTH_LIMIT:.0%}",
                        total_last <= total_first * (1 + GROWTH_LIMIT)))  # fmt: skip
    kinds = result["kinds"].values()
    errors = sum(k["errors"] for k in kinds)
    refused = sum(k["refused"] for k in kinds)
    requests = sum(k["count"] for k in kinds)
    found += [
        Figure("the load: requests answered per second", requests / result["seconds"],
               float(USERS) / 5, "req/s", f"baseline: what {USERS} users ask for (a poll "
               "every 5 s)"),
        Figure("the load: p99 of answered requests", max(k["p99_ms"] for k in kinds), 200.0,
               "ms", "baseline: the seed's target", "< 200",
               max(k["p99_ms"] for k in kinds) < 200),
        Figure("the load: errors", errors, requests, "requests",
               f"baseline: requests answered; {refused} refused (429/503)", "= 0", errors == 0),
        Figure("the load: accepted tasks not ended after it", lost, len(result["accepted"]),
               "tasks", f"baseline: tasks accepted; all ended {drain_s:.0f} s after the load",
               "= 0", lost == 0),
    ]  # fmt: skip
    return found


def main(session: Session) -> None:
    publish(f"memory of mesh serve, idle and over a sustained load ({USERS:,} users)",
            run(session))
