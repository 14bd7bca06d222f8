"""The scale curve: throughput and p99 as in-flight tasks grow, retrieval as memory grows.

In flight: n tasks sent at once to the zero-latency fleet, n = 10, 100, 1,000; each figure is
held to the 10-task one. Memory: one network holding 1k, 10k, 100k items (written straight
into the record with COPY and into the Redis view, as Mesh writes them); an agent's read (20
newest items of its types above the confidence floor, as StepRunner asks) and the REST page
are timed at each size against the 1k figure. Flat, or at worst logarithmic, is the target:
at 100k that is a ratio of log(100k)/log(1k) = 1.67.
"""

from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import psycopg

from bench import processes
from bench.orchestration import AGENTS_C, COORDINATOR_C
from bench.report import Figure, median, percentile, publish
from bench.session import Session
from meshcore.agents import profile_for
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import AgentType
from meshcore.services.memory_view import MemoryView


def in_flight(session: Session) -> list[Figure]:
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    network = session.network(fleet)
    sizes = (10, 30) if session.quick else (10, 100, 1000)
    results = {}
    for n in sizes:
        started = time.perf_counter()
        ids = fleet.submit(n, network)
        fleet.wait(ids, timeout=900, poll_s=0.1)
        tps = n / (time.perf_counter() - started)
        latencies, failed = fleet.outcomes(ids)
        results[n] = (tps, percentile(latencies, 0.99), failed)
    base_tps, base_p99, _ = results[sizes[0]]
    figures = []
    for n, (tps, p99, failed) in results.items():
        figures.append(Figure(f"throughput, {n} tasks in flight", tps, base_tps, "tasks/s",
                              f"baseline: {sizes[0]} in flight"))  # fmt: skip
        note = f"baseline: {sizes[0]} in flight; {failed} not completed"
        figures.append(Figure(f"task p99, {n} tasks in flight", p99, base_p99, "ms", note))
    return figures


def _fill(session: Session, view: MemoryView, network: UUID, tenant: str, count: int) -> None:
    """Write `count` items to the record (COPY) and to the Redis view, as Mesh would."""
    rng = random.Random(count)
    now = datetime.now(UTC)
    types = list(MemoryType)
    items = [
        MemoryItem(uuid4(), tenant, network, rng.choice(types), f"item {i}: " + "x" * 200,
                   round(rng.random(), 2), now - timedelta(seconds=rng.random() * 86_400),
                   {"source_agent": "research"})
        for i in range(count)
    ]  # fmt: skip
    with (
        psycopg.connect(session.servers.psycopg_url) as conn,
        conn.cursor().copy(
            "COPY memory_items (id, tenant_id, network_id, task_id, type, content, confidence,"
            " metadata, created_at) FROM STDIN"
        ) as copy,
    ):
        for m in items:
            copy.write_row((m.id, tenant, network, None, m.type.value, m.content,
                            m.confidence, json.dumps(m.metadata), m.created_at))  # fmt: skip
    for start in range(0, count, 5000):
        view.publish(*items[start : start + 5000])


def memory(session: Session) -> list[Figure]:
    fleet = session.fleet(processes.mesh_fleet_specs(COORDINATOR_C, AGENTS_C))
    _, base = session.api()
    mesh, tenant = fleet.mesh, fleet.mesh.settings.tenant
    network = session.network(fleet)
    view = MemoryView(tenant_id=tenant, uow=mesh.uow, store=mesh.adapters.memory)
    reads = profile_for(AgentType.CONTENT).reads
    agent_query = MemoryQuery(reads, mesh.settings.memory_min_confidence,
                              mesh.settings.memory_read_limit)  # fmt: skip
    samples = 30 if session.quick else 100
    sizes = (1_000, 10_000) if session.quick else (1_000, 10_000, 100_000)
    agent_ms: dict[int, float] = {}
    rest_ms: dict[int, float] = {}
    held = 0
    with httpx.Client(base_url=base, headers=session.auth(), timeout=30) as client:
        for size in sizes:
            _fill(session, view, network, tenant, size - held)
            held = size
            view.query(network, agent_query)  # builds the view's mark once
            agent_ms[size] = median([_timed(lambda: view.query(network, agent_query))
                                     for _ in range(samples)])  # fmt: skip
            page = f"/api/mesh/networks/{network}/memory?page_size=20&min_confidence=0.5"
            client.get(page).raise_for_status()
            rest_ms[size] = median([_timed(lambda p=page: client.get(p).raise_for_status())
                                    for _ in range(samples // 2)])  # fmt: skip
    return [
        *_curve("agent memory read", agent_ms, sizes,
                "baseline: 1k items; 20 newest of 4 types above 0.5"),
        *_curve("REST memory page", rest_ms, sizes,
                "baseline: 1k items; GET /memory?page_size=20"),
    ]  # fmt: skip


def _curve(name: str, ms: dict[int, float], sizes: tuple[int, ...], note: str) -> list[Figure]:
    """Each size against the smallest; the largest must stay within the log bound: retrieval
    may grow no worse than logarithmically, log(largest) / log(smallest)."""
    limit = math.log(sizes[-1]) / math.log(sizes[0])
    figures = []
    for size in sizes:
        bound = f"ratio <= {limit:.2f}" if size == sizes[-1] else ""
        figures.append(Figure(
            f"{name}, {size:,} items", ms[size], ms[sizes[0]], "ms", note,
            bound, (ms[size] / ms[sizes[0]] <= limit) if bound else None,
        ))  # fmt: skip
    return figures


def _timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main(session: Session) -> None:
    publish("scale (zero-latency model)", [*in_flight(session), *memory(session)])
