"""The price of row-level security (a `make bench` suite; alone: `python -m bench.row_security
[--postgres URL] [--rounds N]`).

A task's GET as the API serves it (TaskService.get: the task, its events and subtasks), in
one run, three ways, interleaved round by round so that the machine's noise falls on all alike:

  with RLS      a role held to the policies; each transaction sets its tenant (the default)
  no policies   the same transactions and settings, as a role with BYPASSRLS: the policies'
                share of the cost
  neither       BYPASSRLS and no tenant setting at BEGIN: Mesh as it was before migration 0008

The bench keeps to its own database, `mesh_bench_rls`, created and migrated next to the one
given, and two roles of its own.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.report import Figure, publish
from bench.session import Session
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.migrate import upgrade
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.clock import SystemClock
from meshcore.domain.network import AgentType, Network, NetworkConfig
from meshcore.domain.task import Priority, Task
from meshcore.services.tasks import TaskService

DATABASE = "mesh_bench_rls"
HELD, BYPASSING = "mesh_bench_rls_held", "mesh_bench_rls_bypass"
TENANT = "bench"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def measure(postgres: str, rounds: int, gets: int) -> dict[str, float]:
    """Microseconds per task GET, the median of `rounds`, each way."""
    url = _prepare(sa.make_url(postgres))
    sealer = Sealer([Fernet.generate_key()])
    network_id, task_id = _seed(url, sealer)
    ways = {
        "with RLS": _getter(url.set(username=HELD), sealer, network_id, task_id),
        "no policies": _getter(url.set(username=BYPASSING), sealer, network_id, task_id),
        "neither": _getter(
            url.set(username=BYPASSING), sealer, network_id, task_id, sets_tenant=False
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for get in ways.values():
        get()  # connect and warm the pool and the plan cache
    for _ in range(rounds):
        for name, get in ways.items():
            started = time.perf_counter()
            for _ in range(gets):
                get()
            samples[name].append((time.perf_counter() - started) / gets * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def run(session: Session) -> list[Figure]:
    rounds, gets = (5, 50) if session.quick else (20, 200)
    us = measure(session.servers.admin_url, rounds, gets)
    note = f"median of {rounds} rounds x {gets}; baseline: no tenant set and no policies"
    return [
        Figure("task GET with row-level security", us["with RLS"], us["neither"], "us", note),
        Figure("task GET, tenant set, policies bypassed", us["no policies"], us["neither"], "us",
               "the policies' own share is the difference to the line above"),
    ]  # fmt: skip


def main(session: Session) -> None:
    publish("Row-level security (Postgres)", run(session))


def _cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.row_security")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gets", type=int, default=200, help="GETs per way and round")
    args = parser.parse_args()
    us = measure(args.postgres, args.rounds, args.gets)
    base = us["neither"]
    print(f"task GET (TaskService.get), median of {args.rounds} rounds x {args.gets}:")
    for name, median in us.items():
        print(f"  {name:12s} {median:8.1f} us  ({median - base:+6.1f} us, {median / base:5.1%})")


def _prepare(server: sa.URL) -> sa.URL:
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        exists = sa.text("SELECT 1 FROM pg_database WHERE datname = :d")
        if not db.execute(exists, {"d": DATABASE}).first():
            db.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
        for role, bypass in ((HELD, "NOBYPASSRLS"), (BYPASSING, "BYPASSRLS")):
            if not db.execute(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
            ).first():
                db.execute(sa.text(f"CREATE ROLE {role} LOGIN NOSUPERUSER {bypass}"))
    admin.dispose()
    url = server.set(database=DATABASE)
    upgrade(url.render_as_string(hide_password=False))
    engine = sa.create_engine(url)
    with engine.begin() as db:
        for role in (HELD, BYPASSING):
            db.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    engine.dispose()
    return url


def _seed(url: sa.URL, sealer: Sealer) -> tuple[UUID, UUID]:
    """One network and one task of the bench's tenant, among other tenants' rows."""
    engine = create_engine(url.render_as_string(hide_password=False))
    uow = SqlUnitOfWorkFactory(engine, sealer)
    made: tuple[UUID, UUID] | None = None
    for tenant in (TENANT, "other-1", "other-2"):
        network = Network.create(
            tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
        )
        network.new_agent(name="coordinator", type=AgentType.COORDINATOR, now=NOW)
        tasks = [
            Task.create(
                tenant_id=tenant,
                network_id=network.id,
                description=f"task {i}",
                context={"i": i},
                priority=Priority.NORMAL,
                timeout_seconds=300,
                now=NOW,
            )
            for i in range(50)
        ]
        with uow(tenant) as work:
            work.networks.add(network)
            for task in tasks:
                work.tasks.add(task)
            work.commit()
        made = made or (network.id, tasks[0].id)
    engine.dispose()
    assert made is not None
    return made


def _getter(
    url: sa.URL, sealer: Sealer, network_id: UUID, task_id: UUID, *, sets_tenant: bool = True
) -> Callable[[], object]:
    engine = create_engine(url.render_as_string(hide_password=False), pool_size=1)
    uow = SqlUnitOfWorkFactory(engine, sealer)
    if not sets_tenant:
        sa.event.remove(engine, "begin", tenancy._begin)
    service = TaskService(
        tenant_id=TENANT,
        uow=uow,
        dispatcher=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        revisions=None,  # type: ignore[arg-type]
    )
    return lambda: service.get(network_id, task_id)


if __name__ == "__main__":
    _cli()
