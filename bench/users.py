"""The seed's headline: 10,000 simulated concurrent users on one box.

Each user polls its latest task every 5 s and submits a new one every 60 s (at a random
phase), which offers about 2,000 polls and 167 submissions a second. The load generator is a
bounded asyncio client in a second process (bench.loadgen): a pool of keep-alive connections,
open loop, latency counted from when each request was due. The API and the workers run as in
production, on the same two cores as the client; the client's own CPU is reported. A run at
1,000 users in the same session is the baseline the 10,000-user figures are held to.
"""

from __future__ import annotations

from bench import processes
from bench.api_load import BODY, _address
from bench.loadgen import drive
from bench.orchestration import AGENTS_C, COORDINATOR_C
from bench.report import Figure, publish
from bench.session import Session

CONNECTIONS = 512


def simulate(session: Session, users: int, seconds: float) -> dict:
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    network = session.network(fleet)
    ids = fleet.submit(10 if session.quick else 50, network)
    fleet.wait(ids)
    _, base = session.api()
    host, port = _address(base)
    return drive({
        "mode": "users", "host": host, "port": port, "duration": seconds,
        "headers": session.auth(),
        "connections": CONNECTIONS, "users": users, "poll_every": 5, "submit_every": 60,
        "poll_paths": [f"/api/mesh/networks/{network}/tasks/{i}" for i in ids],
        "submit_path": f"/api/mesh/networks/{network}/tasks", "submit_body": BODY,
    })  # fmt: skip


def _combined(result: dict) -> tuple[float, int, int]:
    """The worse p99 of polls and submissions, the errors and the requests attempted."""
    kinds = result["kinds"].values()
    return (max(k["p99_ms"] for k in kinds), sum(k["errors"] for k in kinds),
            sum(k["attempted"] for k in kinds))  # fmt: skip


def run(session: Session) -> list[Figure]:
    seconds = 2 if session.quick else 20
    small = simulate(session, 1_000, seconds)
    big = simulate(session, 10_000, seconds)
    # The fleet stays up for the next suite; what the users submitted is dropped.
    processes.flush_queues(session.servers)
    p99, errors, count = _combined(big)
    base_p99, base_errors, base_count = _combined(small)
    rate, base_rate = errors / max(count, 1), base_errors / max(base_count, 1)
    poll, base_poll = big["kinds"].get("poll", {}), small["kinds"].get("poll", {})
    return [
        Figure("10k users: p99 (worse of poll and submit)", p99, base_p99, "ms",
               "baseline: 1k users", "< 200", p99 < 200),
        Figure("10k users: error rate", 100 * rate, 100 * base_rate, "%",
               f"baseline: 1k users; {errors} of {count}", "< 0.1", rate < 0.001),
        Figure("10k users: poll p50", poll.get("p50_ms", 0), base_poll.get("p50_ms", 0), "ms",
               "baseline: 1k users"),
        Figure("10k users: requests answered per second",
               sum(k["count"] for k in big["kinds"].values()) / big["seconds"],
               sum(k["count"] for k in small["kinds"].values()) / small["seconds"], "req/s",
               "baseline: 1k users; offered ~2,170 and ~217 req/s"),
        Figure("10k users: load generator CPU", big["client_cores"], small["client_cores"],
               "cores", "baseline: 1k users; the client shares the 2 cores"),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("10,000 concurrent users (poll every 5 s, submit every 60 s)", run(session))
