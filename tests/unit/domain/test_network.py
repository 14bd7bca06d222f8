from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from meshcore.agents import BUILTINS
from meshcore.domain.agent_types import GENERAL_QUEUE, own_queue
from meshcore.domain.errors import Conflict, InvalidInput
from meshcore.domain.network import (
    Agent,
    AgentMetrics,
    AgentStatus,
    AgentType,
    Network,
    NetworkConfig,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def new_network() -> Network:
    return Network.create(
        tenant_id="acme", name="launch", description="", config=NetworkConfig(), now=NOW
    )


def agent(*, is_disabled: bool = False, in_flight: int = 0) -> Agent:
    network = new_network()
    made = network.new_agent(name="writer", type=AgentType.CONTENT, now=NOW)
    return replace(made, is_disabled=is_disabled, metrics=AgentMetrics(in_flight=in_flight))


def test_the_default_config_is_valid() -> None:
    config = NetworkConfig()

    assert (config.max_iterations, config.timeout_seconds, config.quality_threshold) == (
        3,
        300,
        0.8,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_iterations": 0}, "config.max_iterations"),
        ({"max_iterations": 11}, "config.max_iterations"),
        ({"timeout_seconds": 0}, "config.timeout_seconds"),
        ({"timeout_seconds": 86_401}, "config.timeout_seconds"),
        ({"quality_threshold": -0.01}, "config.quality_threshold"),
        ({"quality_threshold": 1.01}, "config.quality_threshold"),
    ],
)
def test_a_config_out_of_range_is_rejected_naming_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        NetworkConfig(**kwargs)  # type: ignore[arg-type]

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: must be between")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_iterations": 1},
        {"max_iterations": 10},
        {"timeout_seconds": 1},
        {"timeout_seconds": 86_400},
        {"quality_threshold": 0.0},
        {"quality_threshold": 1.0},
    ],
)
def test_a_config_at_the_edge_of_its_range_is_accepted(kwargs: dict[str, float]) -> None:
    config = NetworkConfig(**kwargs)  # type: ignore[arg-type]

    assert all(getattr(config, k) == v for k, v in kwargs.items())


def test_an_idle_agent_is_idle() -> None:
    assert agent().status is AgentStatus.IDLE


def test_an_agent_with_steps_in_flight_is_busy() -> None:
    assert agent(in_flight=2).status is AgentStatus.BUSY


def test_a_disabled_agent_is_disabled_even_while_steps_finish() -> None:
    assert agent(is_disabled=True).status is AgentStatus.DISABLED
    assert agent(is_disabled=True, in_flight=1).status is AgentStatus.DISABLED


def test_each_built_in_type_has_its_own_queue_and_others_share_the_general_one() -> None:
    assert BUILTINS["coordinator"].queue == "coordinator"
    assert BUILTINS["content"].queue == "agent.content"
    assert len({d.queue for d in BUILTINS.values()}) == len(AgentType)
    assert own_queue("legal") == "agent.legal"
    assert GENERAL_QUEUE not in {d.queue for d in BUILTINS.values()}


def test_a_new_agent_belongs_to_its_network_and_tenant() -> None:
    network = new_network()

    made = network.new_agent(
        name="r", type=AgentType.RESEARCH, now=NOW, capabilities=("fact-finding",)
    )

    assert network.agents == [made]
    assert (made.tenant_id, made.network_id) == ("acme", network.id)
    assert made.capabilities == ("fact-finding",)
    assert made.status is AgentStatus.IDLE


def test_disabled_agents_take_no_work() -> None:
    network = new_network()
    network.new_agent(name="r", type=AgentType.RESEARCH, now=NOW)
    network.new_agent(name="c", type=AgentType.CONTENT, now=NOW)
    network.agents[1] = replace(network.agents[1], is_disabled=True)
    second = network.new_agent(name="c2", type=AgentType.CONTENT, now=NOW)

    assert network.agent_types() == {AgentType.RESEARCH, AgentType.CONTENT}
    assert network.agent_of(AgentType.CONTENT) == second
    assert network.agent_of(AgentType.DESIGN) is None


def test_a_network_without_enabled_agents_offers_no_types() -> None:
    network = new_network()
    network.new_agent(name="r", type=AgentType.RESEARCH, now=NOW)
    network.agents[0] = replace(network.agents[0], is_disabled=True)

    assert network.agent_types() == frozenset()
    assert network.agent_of(AgentType.RESEARCH) is None


def test_mean_latency_is_zero_before_any_call() -> None:
    assert AgentMetrics().mean_latency_ms == 0.0
    assert AgentMetrics(calls=4, latency_ms_total=100.0).mean_latency_ms == 25.0


def team(*types: AgentType) -> Network:
    network = new_network()
    for agent_type in types:
        network.new_agent(name=agent_type.value, type=agent_type, now=NOW)
    return network


def test_a_team_needs_a_coordinator_and_a_critic_and_says_which_it_lacks() -> None:
    team(AgentType.COORDINATOR, AgentType.CONTENT, AgentType.CRITIC).check_team()

    with pytest.raises(InvalidInput, match="this team has no coordinator and no critic"):
        team(AgentType.CONTENT).check_team()


def test_a_disabled_critic_does_not_count_as_the_team_s_critic() -> None:
    network = team(AgentType.COORDINATOR, AgentType.CONTENT, AgentType.CRITIC)
    network.agents[-1] = replace(network.agents[-1], is_disabled=True)

    with pytest.raises(InvalidInput, match="no critic"):
        network.check_team()


def test_a_team_already_short_of_a_critic_may_still_lose_other_agents() -> None:
    # Networks recorded before the rule may lack a role; only losing one more is refused.
    network = team(AgentType.COORDINATOR, AgentType.CONTENT, AgentType.RESEARCH)

    removed = network.remove_agent(network.agents[1].id)

    assert removed.type == AgentType.CONTENT
    with pytest.raises(Conflict, match="no coordinator"):
        network.remove_agent(network.agents[0].id)
