"""What the contract tests share (test_repository_contract.py and the others named so): the
record each test runs on, the fakes or SQL, and the rows they store in it.

A module takes the `tenant` and `uow` fixtures by importing them, each under its own name as an
alias (`uow as uow`): ruff then counts the import as meant, not as a name the module's tests
redefine when they take the fixture. `uow` runs each test on the fakes and on Postgres; a
module that wants other records parametrizes it itself, indirectly, with the names below.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol
from uuid import uuid4

import pytest
import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.migrate import upgrade
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.network import Network, NetworkConfig
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.task import Priority, Task
from meshcore.domain.webhooks import Webhook
from meshcore.ports import StallFinder, UnitOfWorkFactory
from tests.conftest import DATA_KEYS
from tests.fakes import FakeUnitOfWorkFactory

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
# Children before their parents, so the cleanup leans on no ON DELETE CASCADE (but for a
# network's memory, which goes with it).
CONTRACT_TABLES = (
    "task_ratings",
    "tool_calls",
    "step_attempts",
    "steps",
    "subtasks",
    "webhook_deliveries",
    "task_events",
    "tasks",
    "networks",
    "agent_types",
)


class Record(UnitOfWorkFactory, StallFinder, Protocol):
    """What both factories are: units of work, and the sweeper's queries across tenants."""


@pytest.fixture
def tenant() -> str:
    """The test's tenant; `{tenant}-other` is the one it keeps apart from it."""
    return f"contract-{uuid4().hex[:8]}"


@pytest.fixture(params=["fake", "sql"])
def uow(request: pytest.FixtureRequest, tenant: str) -> Iterator[Record]:
    """The record the test runs on, by name: "fake", the fakes the unit tests run on; "sql" or
    "postgres", the test Postgres; "sqlite", a SQLite file of the test's own, migrated."""
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('tmp_path') / 'mesh.db'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("database_url")
    with engine_clearing(url, tenant) as engine:
        yield SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS))


@contextmanager
def engine_clearing(url: str, tenant: str) -> Iterator[sa.Engine]:
    """An engine on `url`; at the end, every row of the test's tenants is deleted (`tenant`
    and those named after it, `{tenant}-other`), and the engine disposed."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        # Across tenants: on a role row-level security binds, a connection with no tenant
        # would see, and so delete, none of these rows. Only this test's tenants: another
        # run of these tests on the same database may be midway through its own.
        with tenancy.across_tenants(engine).begin() as db:
            for table in CONTRACT_TABLES:
                db.execute(
                    sa.text(f"DELETE FROM {table} WHERE tenant_id LIKE :t"), {"t": f"{tenant}%"}
                )
        engine.dispose()


def stored_network(uow: UnitOfWorkFactory, tenant: str) -> Network:
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    with uow(tenant) as work:
        work.networks.add(network)
        work.commit()
    return network


def new_task(
    network: Network,
    *,
    at: datetime = NOW,
    webhook: Webhook | None = None,
    is_held: bool = False,
    plan: list[PlannedSubtask] | None = None,
) -> Task:
    return Task.create(
        tenant_id=network.tenant_id,
        network_id=network.id,
        description="Write the launch email.",
        context={"audience": "developers", "tags": ["launch"]},
        priority=Priority.HIGH,
        timeout_seconds=600,
        now=at,
        webhook=webhook,
        is_held=is_held,
        plan=plan,
    )


def stored(uow: UnitOfWorkFactory, *tasks: Task) -> None:
    with uow(tasks[0].tenant_id) as work:
        for task in tasks:
            work.tasks.add(task)
        work.commit()
