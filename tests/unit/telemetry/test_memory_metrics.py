"""The seed's average memory confidence: every item written is observed, by its type."""

from __future__ import annotations

from prometheus_client import REGISTRY

from meshcore.domain.memory import MemoryQuery, MemoryType
from meshcore.domain.task import Priority
from tests.fakes import FakeMesh


def observed(kind: str) -> tuple[float, float]:
    labels = {"type": kind}
    count = REGISTRY.get_sample_value("mesh_memory_confidence_count", labels) or 0.0
    total = REGISTRY.get_sample_value("mesh_memory_confidence_sum", labels) or 0.0
    return count, total


def test_a_clients_item_is_observed_at_its_confidence() -> None:
    mesh = FakeMesh.build("acme")
    network = mesh.create_network()
    before = observed("context")

    mesh.memory.add(network.id, type=MemoryType.CONTEXT, content="Audience: devs", confidence=0.4)

    count, total = observed("context")
    assert (count - before[0], round(total - before[1], 6)) == (1, 0.4)


def test_each_item_a_task_writes_is_observed_once() -> None:
    mesh = FakeMesh.build("acme")
    network = mesh.create_network()
    before = {t: observed(t) for t in ("fact", "decision", "feedback")}
    mesh.tasks.submit(
        network.id, description="Launch Orbit", context={}, priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": "research", "description": "Find the facts"}],
    )  # fmt: skip

    mesh.drain()

    # The research step writes a fact, the synthesis a decision, each review a feedback item.
    written = {t: observed(t)[0] - before[t][0] for t in before}
    assert written["fact"] >= 1 and written["decision"] >= 1 and written["feedback"] >= 1
    items = mesh.memory.query(network.id, MemoryQuery(limit=100))
    assert sum(written.values()) == len(items)
