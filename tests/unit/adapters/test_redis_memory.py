from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import fakeredis
import pytest

from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType

START = datetime(2030, 1, 1, tzinfo=UTC)
NETWORK = uuid4()




@pytest.fixture
def store(redis: fakeredis.FakeRedis) -> RedisMemoryStore:
    return RedisMemoryStore(redis, Sealer([Sealer.generate_key()]))


def item(
    content: str,
    *,
    minute: float = 0,
    type: MemoryType = MemoryType.FACT,
    confidence: float = 0.9,
    tenant_id: str = "acme",
    network_id: UUID = NETWORK,
    metadata: dict[str, object] | None = None,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id=tenant_id,
        network_id=network_id,
        type=type,
        content=content,
        confidence=confidence,
        now=START + timedelta(minutes=minute),
        metadata=metadata,
    )


def put(store: RedisMemoryStore, *items: MemoryItem) -> None:
    for i in items:
        store.put(i)


def contents(items: list[MemoryItem]) -> list[str]:
    return [i.content for i in items]


def query(store: RedisMemoryStore, **kwargs: object) -> list[str]:
    return contents(store.query("acme", NETWORK, MemoryQuery(**kwargs)))  # type: ignore[arg-type]


def test_an_item_comes_back_as_it_was_put(store: RedisMemoryStore) -> None:
    original = item("Orbit ships in March", metadata={"task_id": "t-1", "tags": ["launch"]})
    store.put(original)

    (found,) = store.query("acme", NETWORK, MemoryQuery())

    assert found == original
    assert found.created_at.tzinfo is not None


def test_items_come_newest_first_across_types(store: RedisMemoryStore) -> None:
    put(
        store,
        item("oldest", minute=1),
        item("newest", minute=3, type=MemoryType.DECISION),
        item("middle", minute=2, type=MemoryType.FEEDBACK),
    )

    assert query(store) == ["newest", "middle", "oldest"]


def test_a_query_keeps_only_the_types_asked_for(store: RedisMemoryStore) -> None:
    put(
        store,
        item("fact", minute=1),
        item("context", minute=2, type=MemoryType.CONTEXT),
        item("decision", minute=3, type=MemoryType.DECISION),
    )

    assert query(store, types=(MemoryType.FACT, MemoryType.DECISION)) == ["decision", "fact"]
    assert query(store, types=(MemoryType.CONTEXT,)) == ["context"]


def test_a_query_keeps_only_items_at_or_above_the_confidence_floor(
    store: RedisMemoryStore,
) -> None:
    put(
        store,
        item("sure", minute=1, confidence=0.95),
        item("at the floor", minute=2, confidence=0.6),
        item("unsure", minute=3, confidence=0.59),
    )

    assert query(store, min_confidence=0.6) == ["at the floor", "sure"]


def test_a_query_returns_at_most_its_limit_keeping_the_newest(store: RedisMemoryStore) -> None:
    put(store, *(item(f"n{i}", minute=i) for i in range(10)))

    assert query(store, limit=3) == ["n9", "n8", "n7"]


def test_a_query_reaches_past_a_page_of_filtered_out_items(store: RedisMemoryStore) -> None:
    put(store, item("the one sure fact", minute=0, confidence=0.9))
    put(store, *(item(f"guess {i}", minute=1 + i, confidence=0.1) for i in range(150)))

    assert query(store, min_confidence=0.5, limit=5) == ["the one sure fact"]


def test_a_large_query_across_types_answers_the_newest_items(store: RedisMemoryStore) -> None:
    put(store, *(item(f"old decision {i}", minute=i, type=MemoryType.DECISION) for i in range(200)))
    put(store, *(item(f"new fact {i}", minute=1000 + i) for i in range(200)))

    found = query(store, types=(MemoryType.FACT, MemoryType.DECISION), limit=150)

    assert found == [f"new fact {i}" for i in range(199, 49, -1)]


def test_a_query_by_task_answers_what_that_task_wrote(store: RedisMemoryStore) -> None:
    task, other = uuid4(), uuid4()
    put(
        store,
        item("mine", minute=1, metadata={"task_id": str(task), "subtask": "facts"}),
        item("theirs", minute=2, metadata={"task_id": str(other), "subtask": "facts"}),
        item("no task", minute=3),
    )

    assert query(store, task_id=task) == ["mine"]


def test_for_subtasks_answers_what_those_subtasks_wrote_oldest_first(
    store: RedisMemoryStore,
) -> None:
    task = uuid4()

    def wrote(subtask: str, minute: int) -> MemoryItem:
        return item(subtask, minute=minute, metadata={"task_id": str(task), "subtask": subtask})

    put(store, wrote("copy", 3), wrote("facts", 1), wrote("segment", 2), wrote("look", 4))
    elsewhere = item("facts", minute=5, metadata={"task_id": str(uuid4()), "subtask": "facts"})
    store.put(elsewhere)

    found = store.for_subtasks("acme", NETWORK, task, ["facts", "copy"])

    assert contents(found) == ["facts", "copy"]
    assert store.for_subtasks("acme", NETWORK, task, []) == []


def test_purging_a_network_removes_only_that_networks_items(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    other_network = uuid4()
    task = uuid4()
    put(
        store,
        item("doomed", metadata={"task_id": str(task), "subtask": "facts"}),
        item("other network", network_id=other_network),
        item("other tenant, same network id", tenant_id="globex"),
    )

    store.purge_network("acme", NETWORK)

    assert query(store) == []
    assert store.for_subtasks("acme", NETWORK, task, ["facts"]) == []
    assert contents(store.query("acme", other_network, MemoryQuery())) == ["other network"]
    assert contents(store.query("globex", NETWORK, MemoryQuery())) == [
        "other tenant, same network id"
    ]
    assert not any(f"acme:mem:{NETWORK}" in k.decode() for k in redis.keys("*"))


def test_every_key_carries_the_tenant_and_the_network(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    store.put(item("Orbit", metadata={"task_id": str(uuid4())}))

    keys = [k.decode() for k in redis.keys("*")]

    # the item, its type and task indexes, its indexed terms, one term's postings, the stats
    assert len(keys) == 6
    assert all(k.startswith(f"mesh:acme:mem:{NETWORK}:") for k in keys)


def test_tenants_do_not_see_each_others_items(store: RedisMemoryStore) -> None:
    store.put(item("acme's", tenant_id="acme"))
    store.put(item("globex's", tenant_id="globex"))

    assert query(store) == ["acme's"]


def test_the_store_says_whether_redis_answers(
    store: RedisMemoryStore, server: fakeredis.FakeServer
) -> None:
    assert store.is_reachable()

    server.connected = False

    assert not store.is_reachable()


def test_a_query_reads_past_a_page_whose_items_are_gone(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    put(store, item("kept", minute=0))
    gone = [item(f"gone {i}", minute=1 + i) for i in range(5)]
    put(store, *gone)
    redis.delete(*(f"mesh:acme:mem:{NETWORK}:item:{g.id}" for g in gone))

    assert query(store, limit=3) == ["kept"]


def test_a_new_confidence_replaces_the_old_and_leaves_the_rest_of_the_item(
    store: RedisMemoryStore,
) -> None:
    original = item("Orbit ships in March", confidence=0.5, metadata={"tags": ["launch"]})
    store.put(original)

    store.set_confidence("acme", NETWORK, original.id, 0.59, at=START)

    assert store.query("acme", NETWORK, MemoryQuery()) == [replace(original, confidence=0.59)]
    assert query(store, min_confidence=0.55) == ["Orbit ships in March"]


def test_of_two_confidence_updates_the_later_change_wins_whatever_order_they_arrive_in(
    store: RedisMemoryStore,
) -> None:
    original = item("a fact", confidence=0.5)
    store.put(original)

    store.set_confidence("acme", NETWORK, original.id, 0.7, at=START + timedelta(seconds=2))
    store.set_confidence("acme", NETWORK, original.id, 0.6, at=START + timedelta(seconds=1))

    (found,) = store.query("acme", NETWORK, MemoryQuery())
    assert found.confidence == 0.7


def test_a_confidence_update_of_an_item_not_in_the_view_puts_nothing_there(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    store.set_confidence("acme", NETWORK, uuid4(), 0.7, at=START)

    assert redis.keys("*") == []
