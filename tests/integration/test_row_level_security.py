"""Row-level security on the real Postgres: a query that forgot its tenant sees nothing foreign.

Superusers always bypass row-level security, and the tests' `postgres` is one: these tests
connect as a role of their own without it, as an application must (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.keys import SqlKeyStore
from meshcore.adapters.sql.tables import metadata
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.keys import ApiKey, Scope
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import AgentType, Network, NetworkConfig
from meshcore.domain.task import Priority, Task, Usage

pytestmark = pytest.mark.integration

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
ROLE = "mesh_rls_test"
RUN = uuid4().hex[:8]
TENANTS = (f"rls-a-{RUN}", f"rls-b-{RUN}")
SEALER = Sealer([Fernet.generate_key()])


@pytest.fixture(scope="module")
def app_engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine of a LOGIN role that is no superuser and may read and write every table."""
    admin = create_engine(database_url)
    with admin.begin() as db:
        db.execute(
            sa.text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
                f"THEN CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"
            )
        )
        db.execute(
            sa.text(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}"
            )
        )
        db.execute(sa.text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}"))
    url = sa.make_url(database_url).set(username=ROLE, password=None)
    engine = create_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.begin() as db:
        for table in ("api_keys", "networks"):
            db.execute(
                sa.text(f"DELETE FROM {table} WHERE tenant_id IN :t").bindparams(
                    sa.bindparam("t", expanding=True)
                ),
                {"t": list(TENANTS)},
            )
    admin.dispose()


@pytest.fixture(scope="module")
def uow(app_engine: sa.Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(app_engine, SEALER)


@pytest.fixture(scope="module")
def worlds(uow: SqlUnitOfWorkFactory, app_engine: sa.Engine) -> dict[str, Task]:
    """A network with an agent, a task and a memory item, and a key, for each tenant."""
    made = {}
    for tenant in TENANTS:
        network = Network.create(
            tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
        )
        network.new_agent(name="copy", type=AgentType.CONTENT, now=NOW)
        task = Task.create(
            tenant_id=tenant,
            network_id=network.id,
            description=f"canary of {tenant}",
            context={},
            priority=Priority.NORMAL,
            timeout_seconds=300,
            now=NOW,
        )
        item = MemoryItem.create(
            tenant_id=tenant,
            network_id=network.id,
            type=MemoryType.FACT,
            content=f"memory of {tenant}",
            confidence=0.9,
            now=NOW,
        )
        with uow(tenant) as work:
            work.networks.add(network)
            work.tasks.add(task)
            work.memory.add(item)
            work.commit()
        SqlKeyStore(app_engine).add(
            ApiKey(f"k{RUN}{tenant[4]}", tenant, "", frozenset({Scope.READ}), NOW), "0" * 64
        )
        made[tenant] = task
    return made


TENANT_TABLES = [t.name for t in metadata.sorted_tables if "tenant_id" in t.c]


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_a_query_without_a_tenant_filter_sees_only_its_tenants_rows(
    uow: SqlUnitOfWorkFactory, worlds: dict[str, Task], table: str
) -> None:
    mine = TENANTS[0]
    with uow(mine) as work:
        tenants = work.tasks._db.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {table}"))
        assert set(tenants.scalars()) <= {mine}


def test_the_tenant_is_set_again_in_the_transaction_after_a_commit(
    uow: SqlUnitOfWorkFactory, worlds: dict[str, Task]
) -> None:
    mine = TENANTS[0]
    with uow(mine) as work:
        db = work.tasks._db
        assert db.execute(sa.text("SELECT id FROM tasks")).scalars().all() == [worlds[mine].id]
        work.commit()
        assert db.execute(sa.text("SELECT id FROM tasks")).scalars().all() == [worlds[mine].id]


def test_the_repositories_read_their_own_tenant_as_before(
    uow: SqlUnitOfWorkFactory, worlds: dict[str, Task]
) -> None:
    mine = TENANTS[0]
    with uow(mine) as work:
        assert work.tasks.get(worlds[mine].id).description == f"canary of {mine}"
        assert [m.content for m in work.memory.list(worlds[mine].network_id, MemoryQuery())] == [
            f"memory of {mine}"
        ]


def test_a_write_of_another_tenants_row_is_refused(
    uow: SqlUnitOfWorkFactory, worlds: dict[str, Task]
) -> None:
    mine, theirs = TENANTS
    stray = Network.create(
        tenant_id=theirs, name="stray", description="", config=NetworkConfig(), now=NOW
    )
    with uow(mine) as work, pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        work.networks.add(stray)
    with uow(mine) as work:
        updated = work.tasks._db.execute(sa.text("UPDATE tasks SET error = 'x'"))
        work.rollback()
        assert updated.rowcount == 1  # its own task only


def test_a_connection_without_a_tenant_sees_no_tenant_rows(
    app_engine: sa.Engine, worlds: dict[str, Task]
) -> None:
    with app_engine.connect() as db:
        assert db.execute(sa.text("SELECT count(*) FROM tasks")).scalar() == 0


def test_an_autocommit_unit_of_work_leaves_no_tenant_on_the_pooled_connection(
    app_engine: sa.Engine, worlds: dict[str, Task]
) -> None:
    engine = create_engine(
        app_engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0
    )
    mine = TENANTS[0]
    try:
        uow = SqlUnitOfWorkFactory(engine, SEALER)
        with uow(mine, autocommit=True) as work:
            work.agents.record_call(
                worlds[mine].network_id,
                AgentType.CONTENT,
                latency_ms=5.0,
                usage=Usage(input_tokens=1, output_tokens=1),
                is_failure=False,
            )
        with uow(mine) as work:
            calls = sa.text("SELECT calls FROM agents WHERE network_id = :n")
            assert work.tasks._db.execute(calls, {"n": worlds[mine].network_id}).scalar() == 1
        with engine.connect() as db:  # the same, only connection of the pool
            assert db.execute(sa.text("SELECT count(*) FROM agents")).scalar() == 0
    finally:
        engine.dispose()


def test_the_fleet_wide_paths_still_see_every_tenant(
    uow: SqlUnitOfWorkFactory, app_engine: sa.Engine, worlds: dict[str, Task]
) -> None:
    stalled = uow.stalled(NOW + timedelta(days=1), limit=10_000)
    found = {(ref.tenant_id, ref.task_id) for ref in stalled}
    assert {(t, worlds[t].id) for t in TENANTS} <= found
    keys = SqlKeyStore(app_engine)
    assert {k.tenant_id for k in keys.list(None)} >= set(TENANTS)
    for tenant in TENANTS:
        found_key = keys.find(f"k{RUN}{tenant[4]}")
        assert found_key is not None and found_key[0].tenant_id == tenant


def test_superusers_bypass_it_which_is_why_the_app_must_not_be_one(
    database_url: str, worlds: dict[str, Task]
) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            tenants = db.execute(sa.text("SELECT DISTINCT tenant_id FROM tasks")).scalars()
            assert set(TENANTS) <= set(tenants)
    finally:
        engine.dispose()
