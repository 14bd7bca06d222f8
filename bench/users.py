"""The seed's headline: 10,000 simulated users on one box, on the fleet `mesh serve` starts.

Users are spread over TENANTS tenants (a key and a network each, one pass per task). Each
user polls its latest task every 5 s with If-None-Match (the ETag it last saw: a 304 while
the task is unchanged; from the start, each user has seen a task of its tenant), and
submits a task now and then, at a random phase:

  realistic  a submit every 10 minutes: about 17 a second from 10,000 users
  waiting    the realistic mix, but users do not poll: each waits for the task it submitted
             as the Python client does (a long poll until it has ended, then the task)
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
from bench.served import ONE_PASS, Served, drained, network, run_task, served, tenant_keys
from bench.session import Session

TENANTS, CONNECTIONS = 50, 512
DRAIN_TIMEOUT_S = 900


def tenants_of(fleet: Served, keys: list[str]) -> list[dict]:
    """Each tenant's network, headers and a task run to its end (what its users poll first)."""

    def one(key: str) -> dict:
        auth = {"Authorization": f"Bearer {key}"}
        path = f"/api/mesh/networks/{network(fleet.base, auth, ONE_PASS)}/tasks"
        polled, etag = run_task(fleet.base, auth, path)
        return {"headers": auth, "submit_path": path, "poll_paths": [polled],
                "poll_etags": [etag]}  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, keys))


MIXES = (  # name, users, how they learn of their tasks, a submit every N seconds
    ("baseline", 1_000, "poll", 600),
    ("realistic", 10_000, "poll", 600),
    ("waiting", 10_000, "wait", 600),
    ("overload", 10_000, "poll", 60),
)


def simulate(
    fleet: Served, tenants: list[dict], users: int, seconds: float, how: str, every: int
) -> dict:
    host, port = _address(fleet.base)
    return drive({
        "mode": "users", "host": host, "port": port, "duration": seconds,
        "connections": CONNECTIONS, "users": users, "poll_every": 5, "submit_every": every,
        "conditional": True, "wait": how == "wait", "tenants": tenants, "submit_body": BODY,
    })  # fmt: skip


def _answered(result: dict) -> tuple[float, int, int, int, int]:
    """The worse p99 of answered requests (polls, submits; a wait is a task's whole run, and
    is reported on its own); errors, refusals, requests in all, unanswered."""
    kinds = result["kinds"].values()
    p99 = max((k["p99_ms"] for n, k in result["kinds"].items() if k["count"] and n != "wait"),
              default=0.0)  # fmt: skip
    refused = sum(k["refused"] for k in kinds)
    return (p99, sum(k["errors"] for k in kinds), refused,
            sum(k["attempted"] for k in kinds) + refused,
            sum(k["statuses"].get("0", k["statuses"].get(0, 0)) for k in kinds))  # fmt: skip


def run(session: Session) -> list[Figure]:
    session.stop_fleet()
    session.stop_api()
    seconds = 15 if session.quick else 60
    keys = tenant_keys(session.servers, TENANTS, prefix="users-")
    results = {}
    with served(session.servers) as fleet:
        tenants = tenants_of(fleet, keys)
        for name, users, how, every in MIXES:
            result = simulate(fleet, tenants, users, seconds, how, every)
            result["drain_s"], result["lost"] = drained(
                session.servers, result["accepted"], DRAIN_TIMEOUT_S
            )
            results[name] = result
    return figures(results)


def figures(results: dict[str, dict]) -> list[Figure]:
    base, over = results["baseline"], results["overload"]
    b_p99, b_err, b_ref, b_count, _ = _answered(base)
    b_rate = (b_err + b_ref) / max(b_count, 1)
    note = "baseline: 1k users polling, the realistic mix"
    found = []
    for name in ("realistic", "waiting"):
        mix = results[name]
        p99, err, ref, count, unanswered = _answered(mix)
        rate = (err + ref) / max(count, 1)
        what = f"{name}, 10k users"
        found += [
            Figure(f"{what}: p99 of answered requests", p99, b_p99, "ms", note, "< 200",
                   p99 < 200),
            Figure(f"{what}: errors and refusals", 100 * rate, 100 * b_rate, "%",
                   f"{note}; {err} errors ({unanswered} unanswered), {ref} refused, of {count}",
                   "< 0.1", rate < 0.001),
            Figure(f"{what}: requests answered per second",
                   sum(k["count"] for k in mix["kinds"].values()) / mix["seconds"],
                   sum(k["count"] for k in base["kinds"].values()) / base["seconds"], "req/s",
                   note),
            *_waits(mix, what),
            Figure(f"{what}: accepted tasks not ended after the load", mix["lost"],
                   len(mix["accepted"]), "tasks",
                   f"baseline: tasks accepted; all ended {mix['drain_s']:.0f} s after the load",
                   "= 0", mix["lost"] == 0),
        ]  # fmt: skip
    o_p99, o_err, o_ref, o_count, o_unanswered = _answered(over)
    o_refused_p99 = max(k["refused_p99_ms"] for k in over["kinds"].values())
    real = _answered(results["realistic"])[0]
    return [
        *found,
        Figure("overload, 10k users: errors (5xx, 4xx) and unanswered", o_err, o_count,
               "requests", f"baseline: requests in all; {o_unanswered} unanswered", "= 0",
               o_err == 0),
        Figure("overload: refused early (429/503 + Retry-After)", o_ref, o_count, "requests",
               f"baseline: requests in all; the refusals' p99 {o_refused_p99:.0f} ms"),
        Figure("overload: p99 of answered requests", o_p99, real, "ms",
               "baseline: the realistic mix", "< 500", o_p99 < 500),
        Figure("overload: accepted tasks not ended after the load", over["lost"],
               len(over["accepted"]), "tasks",
               f"baseline: tasks accepted; drained in {over['drain_s']:.0f} s", "= 0",
               over["lost"] == 0),
        Figure("10k users: load generator CPU", results["realistic"]["client_cores"],
               base["client_cores"], "cores", f"{note}; the client shares the 2 cores"),
    ]  # fmt: skip


def _waits(mix: dict, what: str) -> list[Figure]:
    """How long a waiting user waited: from the submit's answer to the whole task."""
    wait = mix["kinds"].get("wait")
    if not wait:
        return []
    return [Figure(f"{what}: submit answered to result, p50 / p99", wait["p50_ms"],
                   wait["p99_ms"], "ms", "baseline: the p99 (one long poll and a GET a task)")]


def main(session: Session) -> None:
    publish("10,000 users on mesh serve (poll every 5 s with If-None-Match)", run(session))
