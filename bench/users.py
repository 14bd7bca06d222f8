"""The seed's headline: 10,000 simulated users on one box, on the fleet `mesh serve` starts.

Users are spread over TENANTS tenants (a key and a network each, one pass per task). Each
user polls its latest task every 5 s with If-None-Match (the ETag it last saw: a 304 while
the task is unchanged), and submits a task now and then, at a random phase:

  realistic  a submit every 10 minutes: about 17 a second from 10,000 users
  overload   a submit every 60 s: about 167 a second, far beyond what two cores run

The load generator (bench.loadgen) runs open loop in a second process on the same two cores,
latency counted from when each request was due. A refusal (429 or 503 with Retry-After) is
what an overloaded Mesh should answer, early; anything else at or above 400, or no answer
within 10 s, is an error. After each load, every task that was accepted (202) must end:
the suite waits for them and counts those that did not. The realistic mix at 1,000 users in
the same run is the baseline.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bench.api_load import BODY, _address
from bench.loadgen import drive
from bench.report import Figure, publish
from bench.served import Served, drained, network, run_task, served, tenant_keys
from bench.session import Session

TENANTS, CONNECTIONS = 50, 512
ONE_PASS = {"max_iterations": 1, "quality_threshold": 0.0, "timeout_seconds": 3600}
DRAIN_TIMEOUT_S = 900


def _tenants(fleet: Served, keys: list[str]) -> list[dict]:
    """Each tenant's network, headers and a task run to its end (what its users poll first)."""

    def one(key: str) -> dict:
        auth = {"Authorization": f"Bearer {key}"}
        path = f"/api/mesh/networks/{network(fleet.base, auth, ONE_PASS)}/tasks"
        return {"headers": auth, "submit_path": path,
                "poll_paths": [run_task(fleet.base, auth, path)]}  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, keys))


def simulate(fleet: Served, tenants: list[dict], users: int, seconds: float, every: int) -> dict:
    host, port = _address(fleet.base)
    return drive({
        "mode": "users", "host": host, "port": port, "duration": seconds,
        "connections": CONNECTIONS, "users": users, "poll_every": 5, "submit_every": every,
        "conditional": True, "tenants": tenants, "submit_body": BODY,
    })  # fmt: skip


def _answered(result: dict) -> tuple[float, int, int, int, int]:
    """The worse p99 of answered polls and submits; errors, refusals, attempts, timeouts."""
    kinds = result["kinds"].values()
    return (max(k["p99_ms"] for k in kinds), sum(k["errors"] for k in kinds),
            sum(k["refused"] for k in kinds), sum(k["attempted"] for k in kinds),
            sum(k["statuses"].get("0", k["statuses"].get(0, 0)) for k in kinds))  # fmt: skip


def run(session: Session) -> list[Figure]:
    session.stop_fleet()
    session.stop_api()
    seconds = 15 if session.quick else 60
    keys = tenant_keys(session.servers, TENANTS, prefix="users-")
    results = {}
    with served(session.servers) as fleet:
        tenants = _tenants(fleet, keys)
        for name, users, every in (("baseline", 1_000, 600), ("realistic", 10_000, 600),
                                   ("overload", 10_000, 60)):  # fmt: skip
            result = simulate(fleet, tenants, users, seconds, every)
            result["drain_s"], result["lost"] = drained(
                session.servers, result["accepted"], DRAIN_TIMEOUT_S
            )
            results[name] = result
    return figures(results)


def figures(results: dict[str, dict]) -> list[Figure]:
    base, real, over = results["baseline"], results["realistic"], results["overload"]
    b_p99, b_err, b_ref, b_count, _ = _answered(base)
    p99, err, ref, count, timeouts = _answered(real)
    rate, b_rate = (err + ref) / max(count, 1), (b_err + b_ref) / max(b_count, 1)
    o_p99, o_err, o_ref, o_count, o_timeouts = _answered(over)
    o_refused_p99 = max(k["refused_p99_ms"] for k in over["kinds"].values())
    note = "baseline: 1k users, the realistic mix"
    return [
        Figure("realistic, 10k users: p99 (worse of poll and submit)", p99, b_p99, "ms",
               note, "< 200", p99 < 200),
        Figure("realistic, 10k users: errors and refusals", 100 * rate, 100 * b_rate, "%",
               f"{note}; {err} errors, {ref} refused, {timeouts} unanswered of {count}",
               "< 0.1", rate < 0.001),
        Figure("realistic, 10k users: requests answered per second",
               sum(k["count"] for k in real["kinds"].values()) / real["seconds"],
               sum(k["count"] for k in base["kinds"].values()) / base["seconds"], "req/s",
               f"{note}; offered about 2,017 and 202"),
        Figure("realistic: accepted tasks not ended after the load", real["lost"],
               len(real["accepted"]), "tasks",
               f"baseline: tasks accepted; all ended {real['drain_s']:.0f} s after the load",
               "= 0", real["lost"] == 0),
        Figure("overload, 10k users: errors (5xx, 4xx) and unanswered", o_err, o_count,
               "requests", f"baseline: requests attempted; {o_timeouts} unanswered", "= 0",
               o_err == 0),
        Figure("overload: refused early (429/503 + Retry-After)", o_ref, o_count, "requests",
               f"baseline: requests attempted; refusals' p99 {o_refused_p99:.0f} ms"),
        Figure("overload: p99 of answered requests", o_p99, p99, "ms",
               "baseline: the realistic mix", "< 500", o_p99 < 500),
        Figure("overload: accepted tasks not ended after the load", over["lost"],
               len(over["accepted"]), "tasks",
               f"baseline: tasks accepted; drained in {over['drain_s']:.0f} s", "= 0",
               over["lost"] == 0),
        Figure("10k users: load generator CPU", real["client_cores"], base["client_cores"],
               "cores", f"{note}; the client shares the 2 cores"),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("10,000 users on mesh serve (poll every 5 s with If-None-Match)", run(session))
