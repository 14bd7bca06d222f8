"""One contract for the SQL repositories and the fakes the unit tests run on.

The unit tests of meshcore run on tests/fakes.py, a second database in memory; these tests
hold it to what Postgres does, so a unit test cannot pass on behaviour the record lacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest
import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.agent_types import AgentTypeDef
from meshcore.domain.errors import Conflict
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import Network, NetworkConfig
from meshcore.ports import Page, UnitOfWorkFactory
from tests.conftest import DATA_KEYS
from tests.fakes import FakeUnitOfWorkFactory

pytestmark = pytest.mark.integration

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", "sql"])
def uow(request: pytest.FixtureRequest, database_url: str) -> Iterator[UnitOfWorkFactory]:
    if request.param == "fake":
        yield FakeUnitOfWorkFactory()
        return
    engine = sa.create_engine(database_url)
    yield SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS))
    with engine.begin() as db:
        for table in ("networks", "agent_types"):
            db.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id LIKE 'contract-%'"))
    engine.dispose()


@pytest.fixture
def tenant() -> str:
    return f"contract-{uuid4().hex[:8]}"


def kind(version: int, **changes: object) -> AgentTypeDef:
    made = AgentTypeDef(
        name="legal", description="Checks claims.", role="You are legal.", version=version,
        created_at=NOW,
    )  # fmt: skip
    return replace(made, **changes)


def test_a_types_latest_version_is_current_and_every_version_stays(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.agent_types.add(kind(2, role="You are strict."))
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.current()["legal"].role == "You are strict."
        assert work.agent_types.current(["legal", "other"]).keys() == {"legal"}
        assert work.agent_types.version("legal", 1) == kind(1)
        assert work.agent_types.version("legal", 3) is None
        assert work.agent_types.latest_version("legal") == 2
        assert work.agent_types.latest_version("other") == 0


def test_a_deleted_type_is_not_current_but_its_versions_remain(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.agent_types.add(kind(2), is_deleted=True)
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.current() == {}
        assert work.agent_types.latest_version("legal") == 2
        assert work.agent_types.version("legal", 1) == kind(1)


def test_a_version_stored_twice_is_a_conflict(uow: UnitOfWorkFactory, tenant: str) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.commit()

    with uow(tenant) as work, pytest.raises(Conflict):
        work.agent_types.add(kind(1, role="Another."))


def test_types_are_the_tenants_own(uow: UnitOfWorkFactory, tenant: str) -> None:
    with uow(tenant) as work:
        work.agent_types.add(kind(1))
        work.commit()

    with uow(f"{tenant}-other") as work:
        assert work.agent_types.current() == {}
        assert work.agent_types.version("legal", 1) is None


def test_networks_using_a_type_are_those_with_an_agent_of_it(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    using = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    for name in ("coordinator", "critic", "legal"):
        using.new_agent(name=name, type=name, now=NOW)
    other = Network.create(
        tenant_id=tenant, name="m", description="", config=NetworkConfig(), now=NOW
    )
    other.new_agent(name="coordinator", type="coordinator", now=NOW)
    with uow(tenant) as work:
        work.networks.add(using)
        work.networks.add(other)
        work.commit()

    with uow(tenant) as work:
        assert work.agent_types.networks_using("legal") == [using.id]
        assert work.agent_types.networks_using("design") == []


def test_a_networks_agents_come_back_in_the_order_they_were_added(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    names = ["critic", "research", "coordinator", "content", "design", "analytics"]
    for name in names:  # all at one instant, as a network's team is made
        network.new_agent(name=name, type=name, now=NOW)
    with uow(tenant) as work:
        work.networks.add(network)
        work.commit()

    with uow(tenant) as work:
        assert [a.name for a in work.networks.get(network.id).agents] == names
        assert [a.name for a in work.agents.list(network.id)] == names


def test_networks_list_newest_first_then_by_id_and_count_them_all(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    made = [
        Network.create(
            tenant_id=tenant,
            name=f"n{i}",
            description="",
            config=NetworkConfig(),
            now=NOW.replace(minute=i % 2),  # pairs made in one instant
        )
        for i in range(5)
    ]
    with uow(tenant) as work:
        for network in made:
            work.networks.add(network)
        work.commit()
    expected = sorted(made, key=lambda n: (-n.created_at.timestamp(), str(n.id)))

    with uow(tenant) as work:
        first, total = work.networks.list(Page(offset=0, limit=3))
        rest, _ = work.networks.list(Page(offset=3, limit=3))

    assert total == 5
    assert [n.id for n in first + rest] == [n.id for n in expected]


def test_memory_lists_newest_first_then_by_id_filtered_and_counted(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=NOW
    )
    items = [
        MemoryItem.create(
            tenant_id=tenant,
            network_id=network.id,
            type=MemoryType.FACT if i % 3 else MemoryType.DECISION,
            content=f"item {i}",
            confidence=i / 10,
            now=NOW.replace(minute=i // 2),  # pairs made in one instant
        )
        for i in range(10)
    ]
    with uow(tenant) as work:
        work.networks.add(network)
        for item in items:
            work.memory.add(item)
        work.commit()
    facts = [m for m in items if m.type is MemoryType.FACT and m.confidence >= 0.2]
    expected = sorted(facts, key=lambda m: (-m.created_at.timestamp(), str(m.id)))
    query = MemoryQuery(types=(MemoryType.FACT,), min_confidence=0.2, limit=4)

    with uow(tenant) as work:
        first = work.memory.list(network.id, query)
        rest = work.memory.list(network.id, replace(query, offset=4))
        count = work.memory.count(network.id, query)

    assert count == len(facts)
    assert [m.id for m in first + rest] == [m.id for m in expected]
