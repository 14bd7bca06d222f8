"""The services refuse a create past a quota, store nothing for it, and free the slot again
when what filled it goes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.domain.errors import QuotaExceeded, TooManyTasksInFlight
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import AgentType, Network, NetworkConfig
from meshcore.domain.quotas import Quotas
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.memory import MemoryService
from meshcore.services.networks import AgentSpec, NetworkService
from meshcore.services.tasks import TaskService
from tests.fakes import FakeMesh

QUOTAS = Quotas(
    networks_per_tenant=2, agents_per_network=8, memory_items_per_network=2, tasks_in_flight=2
)


class Limited:
    """One tenant's services over the FakeMesh's record, with QUOTAS."""

    def __init__(self, mesh: FakeMesh) -> None:
        tenant, uow, clock = mesh.tenant_id, mesh.uow, mesh.clock
        self.mesh = mesh
        self.networks = NetworkService(
            tenant_id=tenant,
            uow=uow,
            memory=mesh.store,
            activity=RedisAgentActivity(mesh.redis),
            clock=clock,
            quotas=QUOTAS,
        )
        self.tasks = TaskService(
            tenant_id=tenant,
            uow=uow,
            dispatcher=mesh.dispatcher,
            clock=clock,
            revisions=mesh.revisions,
            quotas=QUOTAS,
        )
        self.memory = MemoryService(
            tenant_id=tenant, uow=uow, store=mesh.store, clock=clock, quotas=QUOTAS
        )

    def network(self, name: str = "launch") -> Network:
        return self.networks.create(name=name, description="", config=NetworkConfig())

    def submit(self, network: Network) -> Task:
        return self.tasks.submit(
            network.id, description="Write it", context={}, priority=Priority.NORMAL
        )

    def remember(self, network: Network, content: str) -> None:
        self.memory.add(network.id, type=MemoryType.FACT, content=content, confidence=1.0)

    def stored(self, table: str) -> int:
        rows = getattr(self.mesh.database.committed, table).values()
        return sum(r.tenant_id == self.mesh.tenant_id for r in rows)


@pytest.fixture
def acme() -> Limited:
    return Limited(FakeMesh.build("acme"))


def test_a_tenant_creates_networks_up_to_its_quota_and_no_more(acme: Limited) -> None:
    acme.network("one")
    acme.network("two")

    with pytest.raises(QuotaExceeded, match="quota networks_per_tenant is 2"):
        acme.network("three")

    assert acme.stored("networks") == 2
    assert acme.stored("agents") == 2 * 7


def test_a_deleted_network_frees_its_slot(acme: Limited) -> None:
    first = acme.network("one")
    acme.network("two")
    acme.networks.delete(first.id)

    acme.network("three")

    assert acme.stored("networks") == 2


def test_one_tenants_quota_leaves_another_tenant_alone(acme: Limited) -> None:
    acme.network("one")
    acme.network("two")
    globex = Limited(acme.mesh.for_tenant("globex"))

    globex.network("one")

    assert globex.stored("networks") == 1


def test_agents_are_added_up_to_the_networks_quota(acme: Limited) -> None:
    network = acme.network()  # the default team of seven
    acme.networks.add_agent(network.id, AgentSpec(AgentType.DESIGN))

    with pytest.raises(QuotaExceeded, match="quota agents_per_network is 8"):
        acme.networks.add_agent(network.id, AgentSpec(AgentType.CONTENT))

    assert acme.stored("agents") == 8


def test_a_network_created_with_more_agents_than_the_quota_is_refused_whole(
    acme: Limited,
) -> None:
    team = [AgentSpec(AgentType.COORDINATOR), AgentSpec(AgentType.CRITIC)]
    team += [AgentSpec(AgentType.RESEARCH, name=f"r{i}") for i in range(7)]

    with pytest.raises(QuotaExceeded, match="would have 9 agents"):
        acme.networks.create(name="big", description="", config=NetworkConfig(), agents=team)

    assert (acme.stored("networks"), acme.stored("agents")) == (0, 0)


def test_memory_takes_items_up_to_the_networks_quota(acme: Limited) -> None:
    network = acme.network()
    acme.remember(network, "Orbit launches in May")
    acme.remember(network, "Orbit costs $4.99")

    with pytest.raises(QuotaExceeded, match="quota memory_items_per_network is 2"):
        acme.remember(network, "One too many")

    assert acme.stored("memory") == 2
    acme.remember(acme.network("other"), "Another network starts empty")


def test_tasks_in_flight_are_refused_until_one_finishes(acme: Limited) -> None:
    network = acme.network()
    first = acme.submit(network)
    acme.submit(network)

    with pytest.raises(TooManyTasksInFlight, match="quota tasks_in_flight is 2"):
        acme.submit(network)
    assert acme.stored("tasks") == 2

    committed = acme.mesh.database.committed.tasks
    committed[first.id] = replace(committed[first.id], status=TaskStatus.COMPLETED)
    acme.submit(network)

    assert acme.stored("tasks") == 3
