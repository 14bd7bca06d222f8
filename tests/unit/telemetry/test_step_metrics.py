"""Agent-step counters: started per attempt, retried past the first, one outcome per key."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from meshcore.domain.network import AgentType
from meshcore.domain.task import Priority, StepRecord, StepStatus
from meshcore.ports import Message
from tests.fakes import FakeMesh

LABELS = {"agent_type": "research", "queue": "agent.research"}


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value("mesh_subtasks_total", {**LABELS, "outcome": outcome}) or 0.0


def test_a_step_counts_each_attempt_and_only_the_first_recorded_outcome() -> None:
    mesh = FakeMesh.build("acme")
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Launch", context={}, priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": "research", "description": "Find the facts"}],
    )
    mesh.dispatcher.deliver_next(mesh.coordination)
    task = mesh.tasks.get(network.id, task.id)
    messages = [Message("system", "Answer format: draft"), Message("user", "Find the facts")]
    before = {o: count(o) for o in ("started", "retried", "succeeded", "failed")}
    durations = REGISTRY.get_sample_value("mesh_subtask_duration_seconds_count", LABELS) or 0.0

    first = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
    mesh.clock.advance(91)  # past the lease: a second attempt, as after a lost worker
    second = mesh.steps.call(task, network, AgentType.RESEARCH, 1, "facts", messages)
    assert isinstance(first, StepRecord) and isinstance(second, StepRecord)
    mesh.steps.record(first, network.id)
    mesh.steps.record(second, network.id)  # the duplicate: discarded, and not counted again

    assert first.status is StepStatus.COMPLETED
    assert count("started") - before["started"] == 2
    assert count("retried") - before["retried"] == 1
    assert count("succeeded") - before["succeeded"] == 1
    assert count("failed") - before["failed"] == 0
    after = REGISTRY.get_sample_value("mesh_subtask_duration_seconds_count", LABELS)
    assert after == pytest.approx(durations + 1)
