"""The catalog's rules, on the fakes: versions, built-ins, deletes, and a run with a new type."""

from __future__ import annotations

import json

import pytest

from meshcore.adapters.offline_model import answer as offline_answer
from meshcore.agents import BUILTINS, profile_for
from meshcore.agents.answer_schema import InvalidAnswer, read_answer
from meshcore.domain.agent_types import AgentTypeDef
from meshcore.domain.errors import Conflict, InvalidInput, NotFound
from meshcore.domain.memory import MemoryType
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, TaskStatus
from meshcore.services.networks import AgentSpec
from tests.fakes import FakeMesh

SCHEMA = {
    "type": "object",
    "required": ["approved", "issues", "risk"],
    "properties": {
        "approved": {"type": "boolean"},
        "issues": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "risk": {"enum": ["low", "medium", "high"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
}
NETWORK = NetworkConfig(quality_threshold=0.0)


def legal(**changes: object) -> AgentTypeDef:
    fields: dict[str, object] = {
        "name": "legal",
        "description": "Checks claims against advertising law.",
        "role": "You are the legal reviewer of a marketing team.",
        "writes": MemoryType.DECISION,
        "answer": SCHEMA,
        **changes,
    }
    return AgentTypeDef(**fields)  # type: ignore[arg-type]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build()


def test_versions_count_up_through_changes_and_deletes(mesh: FakeMesh) -> None:
    assert mesh.agent_types.create(legal()).version == 1
    assert mesh.agent_types.change(legal(role="Stricter.")).version == 2
    mesh.agent_types.delete("legal")

    assert mesh.agent_types.create(legal()).version == 4
    assert mesh.agent_types.get("legal", 2).role == "Stricter."
    with pytest.raises(NotFound):
        mesh.agent_types.change(legal(name="other"))


def test_a_tenants_types_are_its_own(mesh: FakeMesh) -> None:
    mesh.agent_types.create(legal())
    other = mesh.for_tenant("globex")

    assert "legal" not in {t.name for t in other.agent_types.list()}
    with pytest.raises(NotFound):
        other.agent_types.get("legal")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_built_in_types_are_read_only(mesh: FakeMesh, name: str) -> None:
    with pytest.raises(Conflict, match="copy it to a new name"):
        mesh.agent_types.change(legal(name=name, queue=BUILTINS[name].queue))
    with pytest.raises(Conflict, match="built-in"):
        mesh.agent_types.delete(name)


def test_a_type_in_use_cannot_be_deleted_until_its_agents_are_gone(mesh: FakeMesh) -> None:
    mesh.agent_types.create(legal())
    team = [AgentSpec(t) for t in ("coordinator", "critic", "legal")]
    network = mesh.networks.create(name="n", description="", config=NETWORK, agents=team)

    with pytest.raises(Conflict, match=str(network.id)):
        mesh.agent_types.delete("legal")
    agent = next(a for a in network.agents if a.type == "legal")
    mesh.networks.remove_agent(network.id, agent.id)
    mesh.agent_types.delete("legal")


def test_a_network_cannot_name_a_type_the_catalog_lacks(mesh: FakeMesh) -> None:
    with pytest.raises(InvalidInput, match="no agent type 'legal'") as raised:
        mesh.networks.create(
            name="n", description="", config=NETWORK,
            agents=[AgentSpec("coordinator"), AgentSpec("critic"), AgentSpec("legal")],
        )  # fmt: skip
    assert raised.value.field == "agents.2.type"


def test_an_answer_schema_that_is_no_schema_is_refused(mesh: FakeMesh) -> None:
    with pytest.raises(InvalidInput, match="not a JSON Schema") as raised:
        mesh.agent_types.create(legal(answer={"type": "object", "required": "approved"}))
    assert raised.value.field == "answer"


def test_the_offline_model_answers_a_schema_with_an_instance_of_it() -> None:
    system = profile_for(legal()).system_prompt()

    text = offline_answer(system, "Task: Launch Orbit\nYour subtask: check the claims")

    data = read_answer(SCHEMA, text)
    assert len(data["issues"]) == 2 and data["risk"] in ("low", "medium", "high")
    assert set(json.loads(text)) <= set(SCHEMA["properties"])
    with pytest.raises(InvalidAnswer, match="approved"):
        read_answer(SCHEMA, json.dumps({"issues": ["a", "b"], "risk": "low"}))


def test_a_task_plans_for_the_new_type_and_records_its_version(mesh: FakeMesh) -> None:
    mesh.agent_types.create(legal())
    mesh.agent_types.change(legal(role="You are the strict legal reviewer."))
    team = [AgentSpec(t) for t in ("coordinator", "critic", "legal")]
    network = mesh.networks.create(name="n", description="", config=NETWORK, agents=team)
    task = mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL
    )

    mesh.drain()

    done = mesh.tasks.get(network.id, task.id)
    assert done.status is TaskStatus.COMPLETED, done.error
    [step] = [s.step for s in done.subtasks if s.planned.agent_type == "legal"]
    assert step is not None and step.agent_version == 2
    assert step.queue == "agent.general"
    read_answer(SCHEMA, step.output)

