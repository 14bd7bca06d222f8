"""The critic's verdict teaches memory: the items an iteration's steps read gain confidence
when its synthesis passes review and lose it when it fails, each change with its reason."""

from __future__ import annotations

import itertools
import json
from uuid import UUID

import pytest

from meshcore.domain.confidence import ConfidenceSource
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from tests.fakes import FakeMemoryRepository, FakeMesh

VERDICT = "Answer format: verdict_json"
PLAN: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def run(mesh: FakeMesh, config: NetworkConfig, *scores: float) -> tuple[Task, MemoryItem]:
    """A task on a network whose memory holds one fact, reviewed with `scores` in turn."""
    mesh.models.script(VERDICT, *(json.dumps({"score": s, "feedback": "Sharper."}) for s in scores))
    network = mesh.create_network(config)
    fact = mesh.memory.add(
        network.id, type=MemoryType.FACT, content="Orbit costs $12 a month", confidence=0.8
    )
    task = mesh.tasks.submit(
        network.id, description="Write the launch email", context={},
        priority=Priority.NORMAL, plan=PLAN,
    )  # fmt: skip
    mesh.drain()
    return mesh.tasks.get(network.id, task.id), fact


def test_a_passing_verdict_raises_what_the_steps_read_and_says_why(mesh: FakeMesh) -> None:
    task, fact = run(mesh, NetworkConfig(quality_threshold=0.8), 0.9)

    history = mesh.learning.history(task.network_id, fact.id)
    assert task.status is TaskStatus.COMPLETED
    assert history.confidence > 0.8
    [change] = history.changes
    assert change.source is ConfidenceSource.CRITIC and change.task_id == task.id
    assert (change.before, change.after) == (0.8, history.confidence)
    assert "passed iteration 1" in change.reason and "0.90" in change.reason


def test_a_failing_verdict_lowers_it(mesh: FakeMesh) -> None:
    task, fact = run(mesh, NetworkConfig(quality_threshold=0.8, max_iterations=1), 0.3)

    history = mesh.learning.history(task.network_id, fact.id)
    assert history.confidence < 0.8
    assert ["failed iteration 1" in c.reason for c in history.changes] == [True]


def test_each_iteration_teaches_once_by_its_own_verdict(mesh: FakeMesh) -> None:
    task, fact = run(mesh, NetworkConfig(quality_threshold=0.8, max_iterations=2), 0.3, 0.95)
    mesh.coordination.review(task.id, 2)  # a redelivered review: the verdict was taken

    changes = mesh.learning.history(task.network_id, fact.id).changes
    assert [c.after < c.before for c in changes] == [True, False]
    assert ["iteration 1" in changes[0].reason, "iteration 2" in changes[1].reason] == [True] * 2


def test_what_no_step_read_is_left_alone(mesh: FakeMesh) -> None:
    mesh.models.script(VERDICT, json.dumps({"score": 0.9, "feedback": "Fine."}))
    network = mesh.create_network(NetworkConfig(quality_threshold=0.8))
    read = mesh.memory.add(network.id, type=MemoryType.FACT, content="Read", confidence=0.8)
    # Below the agents' confidence floor (0.5): no step reads it.
    unread = mesh.memory.add(network.id, type=MemoryType.FACT, content="Unread", confidence=0.3)
    mesh.tasks.submit(
        network.id, description="Write it", context={}, priority=Priority.NORMAL, plan=PLAN
    )
    mesh.drain()

    assert len(mesh.learning.history(network.id, read.id).changes) == 1
    assert mesh.learning.history(network.id, unread.id).changes == []


def test_what_rejected_steps_wrote_takes_half_the_critics_score(mesh: FakeMesh) -> None:
    task, _ = run(mesh, NetworkConfig(quality_threshold=0.8, max_iterations=1), 0.3)

    written = mesh.memory.query(task.network_id, MemoryQuery(task_id=task.id, limit=100))
    judged = {str(m.metadata["source_agent"]): m for m in written}
    assert {"research", "content", "coordinator"} <= judged.keys()
    for agent in ("research", "content", "coordinator"):
        item = judged[agent]
        assert item.confidence == 0.15, agent  # rejected: half the critic's score
        [change] = mesh.learning.history(task.network_id, item.id).changes
        assert change.reason.startswith("failed by the critic: iteration 1")
    # The critic's own feedback is its judgement, not the work it judged.
    assert mesh.learning.history(task.network_id, judged["critic"].id).changes == []


def test_a_second_task_draws_on_what_the_first_learned_and_not_on_what_it_rejected(
    mesh: FakeMesh,
) -> None:
    config = NetworkConfig(quality_threshold=0.8, max_iterations=2)
    first, _ = run(mesh, config, 0.3, 0.95)  # the first draft rejected, the revision passed
    mesh.models.script(VERDICT, json.dumps({"score": 0.9, "feedback": "Good."}))
    second = mesh.tasks.submit(
        first.network_id, description="Write the follow-up email", context={},
        priority=Priority.NORMAL, plan=PLAN,
    )  # fmt: skip
    mesh.drain()

    learned = mesh.memory.query(first.network_id, MemoryQuery(task_id=first.id, limit=100))
    by_iteration = {
        n: {m.id for m in learned if m.metadata.get("iteration") == n and m.type.value == "fact"}
        for n in (1, 2)
    }
    steps = [s for s in mesh.database.committed.steps.values() if s[1].task_id == second.id]
    read = {UUID(i) for _, step in steps for i in step.memory_read}
    assert by_iteration[1] and by_iteration[2]
    assert by_iteration[2] <= read  # the revision's facts, which the critic passed
    assert not by_iteration[1] & read  # the draft's, which it rejected (scored 0.3)


def test_a_verdict_moves_its_items_in_one_order_whatever_it_judged_them_for(
    mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two verdicts that lock shared rows in different orders deadlock on Postgres: one task
    # may read what another wrote. Ids ascend as items are made, so what the steps wrote
    # sorts after the fact they read, and judging the writes first would break the order.
    made = itertools.count(1)
    monkeypatch.setattr("meshcore.domain.memory.uuid4", lambda: UUID(int=next(made)))
    moved: list[UUID] = []
    change = FakeMemoryRepository.change_confidence

    def spy(self: FakeMemoryRepository, network_id: UUID, item_id: UUID, *a, **kw):  # type: ignore[no-untyped-def]
        moved.append(item_id)
        return change(self, network_id, item_id, *a, **kw)

    monkeypatch.setattr(FakeMemoryRepository, "change_confidence", spy)
    task, fact = run(mesh, NetworkConfig(quality_threshold=0.8), 0.9)

    written = mesh.memory.query(task.network_id, MemoryQuery(task_id=task.id, limit=100))
    assert fact.id in moved and {
        m.id for m in written if m.metadata["source_agent"] != "critic"
    } <= set(moved)
    assert moved == sorted(moved)
