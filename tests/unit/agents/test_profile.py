from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.agents import PROFILES, profile_for
from meshcore.agents.profile import json_part
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.network import AgentType

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def memory(content: str, agent: str, type: MemoryType = MemoryType.FACT) -> MemoryItem:
    return MemoryItem.create(
        tenant_id="acme",
        network_id=uuid4(),
        type=type,
        content=content,
        confidence=0.75,
        now=NOW,
        metadata={"source_agent": agent},
    )


def test_every_agent_type_has_a_profile() -> None:
    assert set(PROFILES) == set(AgentType)
    assert all(profile_for(t).type is t for t in AgentType)


@pytest.mark.parametrize("agent_type", list(AgentType), ids=str)
def test_a_profile_reads_and_writes_memory_with_a_sane_confidence(agent_type: AgentType) -> None:
    profile = profile_for(agent_type)

    assert profile.capabilities
    assert profile.reads
    assert 0.5 <= profile.confidence <= 1.0  # above the default floor, so others can read it
    assert profile.system_prompt().startswith(profile.role)


def test_only_the_coordinator_and_the_critic_answer_in_json() -> None:
    formats = {t: profile_for(t).answer_format for t in AgentType}

    assert formats.pop(AgentType.COORDINATOR) == "plan_json"
    assert formats.pop(AgentType.CRITIC) == "verdict_json"
    assert set(formats.values()) == {"draft"}


def test_a_step_prompt_carries_the_task_subtask_context_and_memory() -> None:
    profile = profile_for(AgentType.CONTENT)

    system, user = profile.step_messages(
        task="Launch Orbit",
        context={"tone": "warm", "segment": "trial"},
        subtask="Write the subject line",
        dependencies=[memory("Orbit ships in March", "research")],
        memory=[memory("Lead with the price", "coordinator", MemoryType.DECISION)],
    )

    assert (system.role, user.role) == ("system", "user")
    assert "Answer format: draft" in system.content
    assert user.content.splitlines() == [
        "Task: Launch Orbit",
        "Your subtask: Write the subject line",
        "Context:",
        '<data source="context">',
        '{"segment": "trial", "tone": "warm"}',
        "</data>",
        "Work you build on:",
        '<data source="agents">',
        "- [research] Orbit ships in March",
        "</data>",
        "Shared memory:",
        '<data source="memory">',
        "- (decision, 0.75) Lead with the price",
        "</data>",
    ]


def test_a_step_prompt_without_context_or_memory_has_no_empty_sections() -> None:
    _, user = profile_for(AgentType.RESEARCH).step_messages(
        task="Launch Orbit", context={}, subtask="Find facts", dependencies=[], memory=[]
    )

    assert user.content == "Task: Launch Orbit\nYour subtask: Find facts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('Here you go:\n```json\n{"a": {"b": 2}}\n```\nThanks', '{"a": {"b": 2}}'),
        ("no json here", "no json here"),
        ("} backwards {", "} backwards {"),
    ],
)
def test_the_json_in_a_models_answer_is_found_inside_prose(text: str, expected: str) -> None:
    assert json_part(text) == expected
