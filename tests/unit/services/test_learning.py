"""MemoryLearning on fakes: verdicts move confidence in the record and the view, with reasons."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.domain.errors import InvalidInput, NotFound
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from tests.fakes import FakeMesh

CRITIC = ConfidenceSource.CRITIC


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def add(mesh: FakeMesh, network_id: UUID, content: str, confidence: float = 0.5) -> MemoryItem:
    mesh.clock.advance(60)
    return mesh.memory.add(network_id, type=MemoryType.FACT, content=content, confidence=confidence)


def confidence_in_view(mesh: FakeMesh, network_id: UUID, item_id: UUID) -> float:
    (found,) = [i for i in mesh.memory.query(network_id, MemoryQuery()) if i.id == item_id]
    return found.confidence


def test_a_pass_raises_each_items_confidence_in_the_record_and_the_view(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    first, second = add(mesh, network.id, "a"), add(mesh, network.id, "b", 0.8)
    task_id = uuid4()

    changes = mesh.learning.learn(
        network.id, [first.id, second.id], 1.0, source=CRITIC, reason="passed", task_id=task_id
    )

    assert [(c.item_id, c.before, c.after) for c in changes] == [
        (first.id, 0.5, reinforced(0.5, 1.0)),
        (second.id, 0.8, reinforced(0.8, 1.0)),
    ]
    assert {(c.source, c.reason, c.task_id, c.at) for c in changes} == {
        (CRITIC, "passed", task_id, mesh.clock.now())
    }
    assert mesh.database.committed.memory[first.id].confidence == reinforced(0.5, 1.0)
    assert confidence_in_view(mesh, network.id, first.id) == reinforced(0.5, 1.0)
    assert confidence_in_view(mesh, network.id, second.id) == reinforced(0.8, 1.0)


def test_a_pass_then_a_fail_is_the_items_history_oldest_first(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    item = add(mesh, network.id, "a")

    mesh.learning.learn(network.id, [item.id], 1.0, source=CRITIC, reason="pass", task_id=None)
    mesh.clock.advance(1)
    mesh.learning.learn(
        network.id, [item.id], -1.0, source=ConfidenceSource.RATING, reason="fail", task_id=None
    )
    history = mesh.learning.history(network.id, item.id)

    up = reinforced(0.5, 1.0)
    assert [(c.reason, c.before, c.after) for c in history.changes] == [
        ("pass", 0.5, up),
        ("fail", up, reinforced(up, -1.0)),
    ]
    assert (history.item_id, history.confidence) == (item.id, reinforced(up, -1.0))


def test_an_item_given_twice_learns_once_and_changes_come_in_the_order_given(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    first, second = add(mesh, network.id, "a"), add(mesh, network.id, "b")
    ids = sorted([first.id, second.id], reverse=True)

    changes = mesh.learning.learn(
        network.id, [*ids, ids[0]], 0.5, source=CRITIC, reason="r", task_id=None
    )

    assert [c.item_id for c in changes] == ids
    assert len(mesh.learning.history(network.id, ids[0]).changes) == 1


def test_items_of_another_network_or_tenant_or_none_at_all_are_left_alone(
    mesh: FakeMesh,
) -> None:
    network, elsewhere = mesh.create_network(), mesh.create_network()
    mine, theirs_in_network = add(mesh, network.id, "mine"), add(mesh, elsewhere.id, "theirs")
    other = mesh.for_tenant("globex")
    foreign_network = other.create_network()
    foreign = add(other, foreign_network.id, "foreign")
    before = dict(mesh.database.committed.memory)

    made = mesh.learning.learn(
        network.id,
        [theirs_in_network.id, foreign.id, uuid4()],
        1.0,
        source=CRITIC,
        reason="r",
        task_id=None,
    )
    foreign_learned = mesh.learning.learn(
        foreign_network.id, [foreign.id], 1.0, source=CRITIC, reason="r", task_id=None
    )

    assert made == [] and foreign_learned == []
    assert mesh.database.committed.memory == before
    assert mesh.database.committed.confidence_changes == {}
    assert mine.confidence == 0.5


def test_a_verdict_that_moves_nothing_records_nothing(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    sure = add(mesh, network.id, "sure", confidence=1.0)

    for signal in (1.0, 0.0):
        learned = mesh.learning.learn(
            network.id, [sure.id], signal, source=CRITIC, reason="r", task_id=None
        )
        assert learned == []
    assert mesh.learning.history(network.id, sure.id).changes == []


def test_a_signal_out_of_range_is_refused_and_changes_nothing(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    item = add(mesh, network.id, "a")

    with pytest.raises(InvalidInput, match="signal"):
        mesh.learning.learn(network.id, [item.id], 2.0, source=CRITIC, reason="r", task_id=None)

    assert mesh.database.committed.memory[item.id].confidence == 0.5


def test_the_history_of_an_item_the_network_or_tenant_lacks_is_not_found(
    mesh: FakeMesh,
) -> None:
    network, elsewhere = mesh.create_network(), mesh.create_network()
    item = add(mesh, network.id, "a")

    with pytest.raises(NotFound):
        mesh.learning.history(elsewhere.id, item.id)
    with pytest.raises(NotFound):
        mesh.learning.history(network.id, uuid4())
    with pytest.raises(NotFound):
        mesh.for_tenant("globex").learning.history(network.id, item.id)


def test_a_view_that_redis_lost_is_rebuilt_with_the_learned_confidence(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    item = add(mesh, network.id, "a")
    mesh.learning.learn(network.id, [item.id], 1.0, source=CRITIC, reason="r", task_id=None)

    mesh.redis.flushall()

    assert confidence_in_view(mesh, network.id, item.id) == reinforced(0.5, 1.0)


def test_deleting_a_network_deletes_its_items_history(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    item = add(mesh, network.id, "a")
    mesh.learning.learn(network.id, [item.id], 1.0, source=CRITIC, reason="r", task_id=None)

    mesh.networks.delete(network.id)

    assert mesh.database.committed.confidence_changes == {}


def test_with_redis_down_the_record_learns_and_the_rebuilt_view_agrees(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    item = add(mesh, network.id, "a")
    mesh.memory.query(network.id, MemoryQuery())  # the view is built

    mesh.redis.connected = False  # fakeredis then raises ConnectionError
    (change,) = mesh.learning.learn(
        network.id, [item.id], 1.0, source=CRITIC, reason="r", task_id=None
    )
    mesh.redis.connected = True
    mesh.redis.flushall()  # the view's mark expired: it is rebuilt on the next read

    assert mesh.database.committed.memory[item.id].confidence == change.after
    assert confidence_in_view(mesh, network.id, item.id) == change.after
