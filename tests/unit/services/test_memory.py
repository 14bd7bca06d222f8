from __future__ import annotations

from uuid import uuid4

import pytest

from meshcore.domain.errors import InvalidInput, NotFound
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from tests.fakes import FakeMesh
from tests.unit.services.memory_items import add


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def contents(items: list[MemoryItem]) -> list[str]:
    return [i.content for i in items]


def test_an_added_item_is_recorded_and_shared(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    item = mesh.memory.add(
        network.id,
        type=MemoryType.DECISION,
        content="Lead with the price",
        confidence=0.7,
        metadata={"tags": "launch"},
    )

    assert mesh.database.committed.memory == {item.id: item}
    assert mesh.memory.query(network.id, MemoryQuery()) == [item]
    assert (item.tenant_id, item.network_id, item.created_at) == (
        "acme",
        network.id,
        mesh.clock.now(),
    )


def test_an_item_for_an_unknown_network_is_rejected_and_stored_nowhere(mesh: FakeMesh) -> None:
    with pytest.raises(NotFound):
        mesh.memory.add(uuid4(), type=MemoryType.FACT, content="x", confidence=1.0)

    assert mesh.database.committed.memory == {}
    assert mesh.redis.keys("*") == []


def test_an_invalid_item_is_rejected_and_stored_nowhere(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    with pytest.raises(InvalidInput, match="confidence"):
        mesh.memory.add(network.id, type=MemoryType.FACT, content="x", confidence=1.5)

    assert mesh.database.committed.memory == {}
    assert mesh.memory.query(network.id, MemoryQuery()) == []


def test_a_query_answers_newest_first(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    for content in ("first", "second", "third"):
        add(mesh, network.id, content)

    assert contents(mesh.memory.query(network.id, MemoryQuery())) == ["third", "second", "first"]


def test_a_query_filters_by_type(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    add(mesh, network.id, "a fact")
    add(mesh, network.id, "a decision", type=MemoryType.DECISION)
    add(mesh, network.id, "some feedback", type=MemoryType.FEEDBACK)

    found = mesh.memory.query(network.id, MemoryQuery(types=(MemoryType.FACT, MemoryType.FEEDBACK)))

    assert contents(found) == ["some feedback", "a fact"]


def test_a_query_filters_by_confidence_inclusively(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    add(mesh, network.id, "sure", confidence=0.9)
    add(mesh, network.id, "borderline", confidence=0.5)
    add(mesh, network.id, "rumour", confidence=0.49)

    found = mesh.memory.query(network.id, MemoryQuery(min_confidence=0.5))

    assert contents(found) == ["borderline", "sure"]


def test_a_query_returns_at_most_its_limit_keeping_the_newest(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    for i in range(5):
        add(mesh, network.id, f"item {i}")

    assert contents(mesh.memory.query(network.id, MemoryQuery(limit=2))) == ["item 4", "item 3"]


def test_memory_is_per_network(mesh: FakeMesh) -> None:
    one, two = mesh.create_network(), mesh.create_network()
    add(mesh, one.id, "about one")

    assert mesh.memory.query(two.id, MemoryQuery()) == []


def test_another_tenant_cannot_read_or_write_a_networks_memory(mesh: FakeMesh) -> None:
    rival = mesh.for_tenant("globex")
    network = mesh.create_network()
    add(mesh, network.id, "secret plan")

    with pytest.raises(NotFound):
        rival.memory.query(network.id, MemoryQuery())
    with pytest.raises(NotFound):
        rival.memory.add(network.id, type=MemoryType.FACT, content="x", confidence=1.0)

    assert contents(mesh.memory.query(network.id, MemoryQuery())) == ["secret plan"]


def test_a_rebuild_drops_what_the_record_deleted_while_the_view_missed_it(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    kept = add(mesh, network.id, "Orbit costs $12")
    gone = add(mesh, network.id, "Orbit costs $15")
    assert len(mesh.memory.query(network.id, MemoryQuery())) == 2  # the view is built
    # Deleted from the record while Redis was down: the view never heard of it.
    del mesh.database.committed.memory[gone.id]
    assert gone.id in {m.id for m in mesh.memory.query(network.id, MemoryQuery())}

    for key in mesh.redis.scan_iter(match="*:built"):
        mesh.redis.delete(key)  # the view's mark expires: the next read rebuilds it

    assert [m.id for m in mesh.memory.query(network.id, MemoryQuery())] == [kept.id]


def test_while_another_reader_rebuilds_the_view_a_read_is_answered_from_the_record(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    first = add(mesh, network.id, "Orbit costs $12")
    second = add(mesh, network.id, "Orbit ships in May")
    mesh.redis.flushall()  # Redis restarted empty: every reader finds the view missing
    assert mesh.store.claim_rebuild("acme", network.id, 60)  # another reader is at it

    meanwhile = mesh.memory.query(network.id, MemoryQuery())
    not_built = mesh.store.is_built("acme", network.id)
    mesh.store.release_rebuild("acme", network.id)
    after = mesh.memory.query(network.id, MemoryQuery())

    assert [m.id for m in meanwhile] == [second.id, first.id]  # from the record, newest first
    assert not not_built  # this reader left the rebuild to the one that claimed it
    assert [m.id for m in after] == [second.id, first.id]
    assert mesh.store.is_built("acme", network.id)
