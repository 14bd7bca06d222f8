"""The hot read on `mesh serve`: a task GET at a fixed rate, and what a full GET, a summary and
a 304 each cost the API, on the fleet the `cost` suite started.

Reads are spread over TENANTS tenants, a key and a completed task each, so that no key meets
the default rate limit (6,000 a minute): 500 reads a second is 50 a key. The load generator
(bench.loadgen) runs open loop in a second process; the API's CPU is read from its processes.
"""

from __future__ import annotations

from bench.api_load import _address, read_cost
from bench.processes import Servers
from bench.report import Figure
from bench.served import ONE_PASS, Served, network, run_task, tenant_keys

TENANTS, RATE, CONNECTIONS = 10, 500, 64


def measure(fleet: Served, servers: Servers, seconds: float) -> dict:
    reads = []
    for key in tenant_keys(servers, TENANTS, prefix="reads-"):
        auth = {"Authorization": f"Bearer {key}"}
        path = f"/api/mesh/networks/{network(fleet.base, auth, ONE_PASS)}/tasks"
        task, etag = run_task(fleet.base, auth, path)
        reads.append((auth, task, etag))
    kinds = {
        "full": [{"path": t, "headers": a} for a, t, _ in reads],
        "summary": [{"path": f"{t}?view=summary", "headers": a} for a, t, _ in reads],
        "304": [{"path": t, "headers": {**a, "If-None-Match": e}} for a, t, e in reads],
    }
    return {
        kind: read_cost(_address(fleet.base), requests, seconds=seconds, rate=RATE,
                        connections=CONNECTIONS, cpu_seconds=fleet.api_cpu_seconds)
        for kind, requests in kinds.items()
    }


def figures(reads: dict) -> list[Figure]:
    full, summary, cond = reads["full"], reads["summary"], reads["304"]
    p99, errors = full["rate"]["p99_ms"], full["rate"]["errors"]
    ratio = full["cpu_us"] / cond["cpu_us"] if cond["cpu_us"] else 0.0
    note = f"{TENANTS} tenants' keys; baseline: the p50"
    return [
        Figure(f"task GET at {RATE} req/s: p99", p99, full["rate"]["p50_ms"], "ms", note,
               "< 50", p99 < 50),
        Figure(f"task GET at {RATE} req/s: errors", errors, full["rate"]["attempted"],
               "requests", "baseline: requests sent", "= 0", errors == 0),
        Figure(f"summary GET at {RATE} req/s: p99", summary["rate"]["p99_ms"],
               summary["rate"]["p50_ms"], "ms", note),
        Figure(f"conditional GET (304) at {RATE} req/s: p99", cond["rate"]["p99_ms"],
               cond["rate"]["p50_ms"], "ms", note),
        Figure("API CPU per full task GET", full["cpu_us"] / 1000, cond["cpu_us"] / 1000, "ms",
               f"baseline: a 304; ratio {ratio:.1f}", "ratio >= 5", ratio >= 5),
        Figure("API CPU per summary GET", summary["cpu_us"] / 1000, cond["cpu_us"] / 1000, "ms",
               "baseline: a 304"),
        Figure("task GETs answered per second, saturated", full["sat"]["rps"],
               cond["sat"]["rps"], "req/s",
               f"baseline: 304s; {CONNECTIONS} connections"),
    ]  # fmt: skip
