from __future__ import annotations

from uuid import uuid4

import pytest

from meshcore.agents import profile_for
from meshcore.domain.errors import Conflict, InvalidInput, NotFound
from meshcore.domain.memory import MemoryQuery, MemoryType
from meshcore.domain.network import AgentStatus, AgentType, ModelConfig, NetworkConfig
from meshcore.domain.task import Priority
from meshcore.ports import Page
from meshcore.services.networks import AgentSpec
from tests.fakes import FakeMesh


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


@pytest.fixture
def rival(mesh: FakeMesh) -> FakeMesh:
    """Another tenant sharing the same database and Redis."""
    return mesh.for_tenant("globex")


def redis_keys(mesh: FakeMesh) -> set[str]:
    return {k.decode() for k in mesh.redis.keys("*")}


def test_a_network_created_without_agents_gets_the_default_team(mesh: FakeMesh) -> None:
    network = mesh.networks.create(name="launch", description="d", config=NetworkConfig())

    stored = mesh.networks.get(network.id)
    assert sorted(a.type for a in stored.agents) == sorted(AgentType)
    assert len(stored.agents) == 7
    for agent in stored.agents:
        assert agent.name == agent.type.value
        assert agent.capabilities == profile_for(agent.type).capabilities
        assert agent.status is AgentStatus.IDLE
        assert (agent.tenant_id, agent.network_id) == ("acme", network.id)


def test_a_network_created_with_agents_gets_exactly_those(mesh: FakeMesh) -> None:
    network = mesh.networks.create(
        name="small",
        description="",
        config=NetworkConfig(max_iterations=1),
        agents=[
            AgentSpec(AgentType.COORDINATOR),
            AgentSpec(
                AgentType.CONTENT,
                name="copywriter",
                model=ModelConfig(chain=("gpt-4o",), temperature=0.9),
                capabilities=("haiku",),
            ),
            AgentSpec(AgentType.CRITIC),
        ],
    )

    stored = mesh.networks.get(network.id)
    assert stored.config.max_iterations == 1
    by_type = {a.type: a for a in stored.agents}
    assert set(by_type) == {AgentType.COORDINATOR, AgentType.CONTENT, AgentType.CRITIC}
    copywriter = by_type[AgentType.CONTENT]
    assert (copywriter.name, copywriter.capabilities) == ("copywriter", ("haiku",))
    assert copywriter.model == ModelConfig(chain=("gpt-4o",), temperature=0.9)


def test_networks_are_listed_newest_first_a_page_at_a_time(mesh: FakeMesh) -> None:
    made = []
    for i in range(3):
        made.append(mesh.networks.create(name=f"n{i}", description="", config=NetworkConfig()))
        mesh.clock.advance(60)

    first, total = mesh.networks.list(Page(offset=0, limit=2))
    rest, _ = mesh.networks.list(Page(offset=2, limit=2))

    assert total == 3
    assert [n.name for n in first + rest] == ["n2", "n1", "n0"]
    assert all(len(n.agents) == 7 for n in first)


def test_a_tenant_sees_only_its_own_networks(mesh: FakeMesh, rival: FakeMesh) -> None:
    mine = mesh.create_network()
    theirs = rival.create_network()

    assert [n.id for n in mesh.networks.list(Page())[0]] == [mine.id]
    assert [n.id for n in rival.networks.list(Page())[0]] == [theirs.id]
    with pytest.raises(NotFound, match=f"network {theirs.id} not found"):
        mesh.networks.get(theirs.id)
    with pytest.raises(NotFound):
        mesh.networks.list_agents(theirs.id)


def test_an_unknown_network_is_not_found(mesh: FakeMesh) -> None:
    missing = uuid4()

    with pytest.raises(NotFound) as raised:
        mesh.networks.get(missing)

    assert (raised.value.kind, raised.value.id) == ("network", missing)


def test_deleting_a_network_removes_its_record_and_its_memory(mesh: FakeMesh) -> None:
    doomed, kept = mesh.create_network(), mesh.create_network()
    for network in (doomed, kept):
        mesh.memory.add(network.id, type=MemoryType.FACT, content="Orbit ships", confidence=1.0)
    mesh.tasks.submit(doomed.id, description="launch email", context={}, priority=Priority.NORMAL)

    mesh.networks.delete(doomed.id)

    with pytest.raises(NotFound):
        mesh.networks.get(doomed.id)
    assert not any(str(doomed.id) in key for key in redis_keys(mesh))
    assert any(str(kept.id) in key for key in redis_keys(mesh))
    assert mesh.memory.query(kept.id, MemoryQuery())
    committed = mesh.database.committed
    assert all(t.network_id != doomed.id for t in committed.tasks.values())
    assert all(a.network_id != doomed.id for a in committed.agents.values())
    assert all(m.network_id != doomed.id for m in committed.memory.values())


def test_another_tenant_cannot_delete_a_network(mesh: FakeMesh, rival: FakeMesh) -> None:
    network = mesh.create_network()
    mesh.memory.add(network.id, type=MemoryType.FACT, content="Orbit ships", confidence=1.0)
    keys = redis_keys(mesh)

    with pytest.raises(NotFound):
        rival.networks.delete(network.id)

    assert mesh.networks.get(network.id).id == network.id
    assert redis_keys(mesh) == keys


def test_an_added_agent_joins_the_network(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    added = mesh.networks.add_agent(network.id, AgentSpec(AgentType.RESEARCH, name="scout"))

    agents = mesh.networks.list_agents(network.id)
    assert added in agents
    assert len(agents) == 8
    assert [a.name for a in agents if a.type == AgentType.RESEARCH].count("scout") == 1
    assert added.capabilities == profile_for(AgentType.RESEARCH).capabilities


def test_a_removed_agent_leaves_the_network(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    design = next(a for a in network.agents if a.type == AgentType.DESIGN)

    mesh.networks.remove_agent(network.id, design.id)

    remaining = mesh.networks.list_agents(network.id)
    assert design.id not in {a.id for a in remaining}
    assert AgentType.DESIGN not in mesh.networks.get(network.id).agent_types()
    with pytest.raises(NotFound, match=f"agent {design.id} not found"):
        mesh.networks.remove_agent(network.id, design.id)


def test_agents_of_another_tenant_cannot_be_added_or_removed(
    mesh: FakeMesh, rival: FakeMesh
) -> None:
    network = mesh.create_network()
    agent = network.agents[0]

    with pytest.raises(NotFound):
        rival.networks.add_agent(network.id, AgentSpec(AgentType.RESEARCH))
    with pytest.raises(NotFound):
        rival.networks.remove_agent(network.id, agent.id)

    assert len(mesh.networks.list_agents(network.id)) == 7


def test_an_agent_is_removed_only_from_the_network_named(mesh: FakeMesh) -> None:
    first, second = mesh.create_network(), mesh.create_network()

    with pytest.raises(NotFound):
        mesh.networks.remove_agent(second.id, first.agents[0].id)

    assert len(mesh.networks.list_agents(first.id)) == 7


@pytest.mark.parametrize("missing", [AgentType.COORDINATOR, AgentType.CRITIC])
def test_a_team_without_a_coordinator_or_a_critic_is_refused_and_nothing_is_stored(
    mesh: FakeMesh, missing: AgentType
) -> None:
    team = [AgentSpec(t) for t in (AgentType.COORDINATOR, AgentType.CONTENT, AgentType.CRITIC)]

    with pytest.raises(InvalidInput, match=f"this team has no {missing.value}") as refused:
        mesh.networks.create(
            name="short", description="", config=NetworkConfig(),
            agents=[s for s in team if s.type is not missing],
        )  # fmt: skip

    assert refused.value.field == "agents"
    assert mesh.database.committed.networks == {}


@pytest.mark.parametrize("role", [AgentType.COORDINATOR, AgentType.CRITIC])
def test_the_last_coordinator_or_critic_cannot_be_removed(mesh: FakeMesh, role: AgentType) -> None:
    network = mesh.create_network()
    last = next(a for a in network.agents if a.type is role)

    with pytest.raises(Conflict, match=f"would be left with no {role.value}"):
        mesh.networks.remove_agent(network.id, last.id)

    assert last.id in {a.id for a in mesh.networks.list_agents(network.id)}


def test_a_coordinator_goes_once_another_one_takes_its_place(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    first = next(a for a in network.agents if a.type == AgentType.COORDINATOR)
    second = mesh.networks.add_agent(network.id, AgentSpec(AgentType.COORDINATOR, name="deputy"))

    mesh.networks.remove_agent(network.id, first.id)

    assert mesh.networks.get(network.id).agent_of(AgentType.COORDINATOR).id == second.id
