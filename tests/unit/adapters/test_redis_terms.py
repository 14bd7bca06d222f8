"""The term index beside the memory view (adapters/redis_terms.py), on fakeredis."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import fakeredis
import pytest

from meshcore.adapters import redis_terms
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.domain import relevance
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.relevance import Candidate

START = datetime(2030, 1, 1, tzinfo=UTC)
NETWORK = uuid4()
KEY = Sealer.generate_key()
FACTS = MemoryQuery(types=(MemoryType.FACT,))


@pytest.fixture
def store(redis: fakeredis.FakeRedis) -> RedisMemoryStore:
    return RedisMemoryStore(redis, Sealer([KEY]))


def item(
    content: str,
    *,
    type: MemoryType = MemoryType.FACT,
    confidence: float = 0.9,
    minute: float = 0,
    metadata: dict[str, object] | None = None,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id="acme",
        network_id=NETWORK,
        type=type,
        content=content,
        confidence=confidence,
        now=START + timedelta(minutes=minute),
        metadata=metadata,
    )


def search(
    store: RedisMemoryStore, text: str, query: MemoryQuery = FACTS, pool: int = 10
) -> list[tuple[str, float]]:
    found = store.search("acme", NETWORK, relevance.query_terms(text), query, pool=pool)
    opened = store.get_many("acme", NETWORK, [c.id for c in found])
    assert [i.id for i in opened] == [c.id for c in found]
    return [(i.content, c.relevance) for i, c in zip(opened, found, strict=True)]


def contents(found: list[tuple[str, float]]) -> list[str]:
    return [content for content, _ in found]


def test_a_search_finds_the_items_holding_its_terms_best_first(store: RedisMemoryStore) -> None:
    store.put_many([
        item("Orbit launches in March"),
        item("Orbit costs $9 a month for teachers, $9 flat"),
        item("Spring colours for the newsletter"),
    ])  # fmt: skip

    found = search(store, "What does Orbit cost teachers?")

    assert contents(found) == [
        "Orbit costs $9 a month for teachers, $9 flat",
        "Orbit launches in March",
    ]
    assert found[0][1] > found[1][1] > 0


def test_scores_are_the_bm25_of_the_items_in_hand(store: RedisMemoryStore) -> None:
    texts = [f"Orbit note {n}: " + "teachers " * n + "pricing detail" for n in range(1, 6)]
    store.put_many([item(t, minute=n) for n, t in enumerate(texts)])
    terms = relevance.query_terms("teachers pricing")

    found = dict(search(store, "teachers pricing"))
    expected = relevance.bm25(terms, [relevance.terms(t) for t in texts])

    # The index normalises by the average length as it was when each item was written.
    ranked = sorted(texts, key=lambda t: -expected[texts.index(t)])
    assert sorted(found, key=lambda t: -found[t]) == ranked


def test_a_search_keeps_to_its_types_and_its_confidence_floor(store: RedisMemoryStore) -> None:
    store.put_many([
        item("Orbit price is $9", type=MemoryType.FACT),
        item("Orbit price should be lower", type=MemoryType.FEEDBACK),
        item("Orbit price was a guess", confidence=0.2),
    ])  # fmt: skip

    assert contents(search(store, "Orbit price", replace(FACTS, min_confidence=0.5))) == [
        "Orbit price is $9"
    ]
    feedback = MemoryQuery(types=(MemoryType.FEEDBACK,))
    assert contents(search(store, "Orbit price", feedback)) == ["Orbit price should be lower"]


def test_words_a_search_cannot_find_answer_nothing(store: RedisMemoryStore) -> None:
    store.put(item("Orbit launches in March"))

    assert search(store, "pricing for teachers") == []
    assert search(store, "the of and") == []


def test_the_index_holds_no_word_of_the_content(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    store.put(item("Confidential: Orbit launches at zebracorn pricing", metadata={"task_id": "t"}))

    for key in redis.keys("*"):
        assert b"zebracorn" not in key and b"orbit" not in key.lower()
        kind = redis.type(key)
        if kind == b"string":
            values = [redis.get(key)]
        elif kind == b"zset":
            values = [m for m, _ in redis.zrange(key, 0, -1, withscores=True)]
        else:
            values = list(redis.hgetall(key).values())
        assert not any(b"zebracorn" in v or b"orbit" in v.lower() for v in values), key


def test_a_put_again_with_new_content_replaces_its_postings(store: RedisMemoryStore) -> None:
    first = item("Orbit launches in March")
    store.put(first)

    store.put(replace(first, content="Orbit launches in April"))

    assert contents(search(store, "March")) == []
    assert contents(search(store, "April")) == ["Orbit launches in April"]


def test_a_put_again_of_the_same_item_changes_nothing_in_the_index(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    store.put_many([item("Orbit launches in March"), item("Orbit costs $9")])
    index = f"mesh:acme:mem:{NETWORK}:[dst][ote]*"  # doc, stats and term keys

    def dumped() -> dict[bytes, bytes | None]:
        return {k: redis.dump(k) for k in redis.keys(index)}

    before = dumped()
    store.put_many(store.query("acme", NETWORK, MemoryQuery()))  # as a rebuild does

    assert len(before) == 2 + 1 + 4  # docs, stats, and orbit, launch, march, cost
    assert dumped() == before


def test_forgetting_an_item_takes_it_and_all_its_index_entries_out(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    kept = item("Orbit costs $9")
    store.put(kept)
    keys = set(redis.keys("*"))
    stats = redis.hgetall(f"mesh:acme:mem:{NETWORK}:stats")
    gone = item("Orbit launches in March", type=MemoryType.DECISION, metadata={"task_id": "t1"})
    store.put(gone)

    store.forget("acme", NETWORK, [gone.id])

    assert set(redis.keys("*")) == keys
    assert redis.hgetall(f"mesh:acme:mem:{NETWORK}:stats") == stats
    assert contents(search(store, "Orbit", MemoryQuery())) == ["Orbit costs $9"]


def test_purging_a_network_takes_its_index_with_it(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    store.put_many([item("Orbit costs $9"), item("Orbit launches in March")])

    store.purge_network("acme", NETWORK)

    assert redis.keys("*") == []


def test_a_candidate_carries_what_ranking_needs_and_its_content_stays_sealed(
    store: RedisMemoryStore,
) -> None:
    stored = item("Orbit costs $9", confidence=0.8, minute=5, type=MemoryType.DECISION)
    store.put(stored)

    (found,) = store.search("acme", NETWORK, {"orbit": 1.0}, MemoryQuery(), pool=10)

    assert (found.id, found.type, found.confidence, found.created_at) == (
        stored.id, MemoryType.DECISION, 0.8, stored.created_at,
    )  # fmt: skip
    assert found.relevance > 0 and found.item is None


def common_terms_corpus(store: RedisMemoryStore, seed: int) -> list[MemoryItem]:
    """Two terms most items hold: each list runs far past a pool's page."""
    rng = random.Random(seed)
    items = []
    for n in range(600):
        words = ["orbit"] * rng.randint(0, 4) + ["launch"] * rng.randint(0, 4)
        words += [f"filler{rng.randint(0, 50)}" for _ in range(rng.randint(2, 30))]
        rng.shuffle(words)
        items.append(item(" ".join(words), minute=n))
    store.put_many(items)
    return items


def ids(found: list[Candidate]) -> list[UUID]:
    return [c.id for c in found]


def test_scores_are_exactly_the_bm25_of_the_networks_items(store: RedisMemoryStore) -> None:
    items = common_terms_corpus(store, 3)
    terms = relevance.query_terms("orbit launch filler7")
    expected = relevance.bm25(terms, [relevance.terms(i.content) for i in items])

    every = store.search("acme", NETWORK, terms, FACTS, pool=1000)

    assert len(every) == sum(1 for score in expected if score > 0)
    by_id = {i.id: score for i, score in zip(items, expected, strict=True)}
    assert all(c.relevance == pytest.approx(by_id[c.id]) for c in every)
    assert [c.relevance for c in every] == sorted((c.relevance for c in every), reverse=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_past_a_page_the_pool_still_holds_the_best_items(
    store: RedisMemoryStore, seed: int
) -> None:
    common_terms_corpus(store, seed)
    terms = relevance.query_terms("orbit launch")

    found = store.search("acme", NETWORK, terms, FACTS, pool=100)
    every = store.search("acme", NETWORK, terms, FACTS, pool=1000)

    # The pool is what some term's first page shows, each scored exactly: the best items
    # of all are there, in their order, though past them an item holding both terms
    # fairly often but neither most may be missing.
    assert ids(found[:10]) == ids(every[:10])
    scores = {c.id: c.relevance for c in every}
    assert all(c.relevance == scores[c.id] for c in found)


def test_a_view_under_another_term_key_is_rebuilt_after_a_rotation(
    redis: fakeredis.FakeRedis,
) -> None:
    old = RedisMemoryStore(redis, Sealer([KEY]))
    old.put(item("Orbit costs $9"))
    old.mark_built("acme", NETWORK, 600)
    rotated = RedisMemoryStore(redis, Sealer([Sealer.generate_key(), KEY]))
    assert search(rotated, "Orbit") == []  # its terms hash to other tokens

    rotated.reseal("acme")

    assert not rotated.is_built("acme", NETWORK)
    rotated.put_many(rotated.query("acme", NETWORK, MemoryQuery()))  # as a rebuild does
    assert contents(search(rotated, "Orbit")) == ["Orbit costs $9"]
    # The old postings went with the re-index: only the new key's tokens are left.
    terms = {k.decode() for k in redis.keys(f"mesh:acme:mem:{NETWORK}:term:*")}
    tokens = {rotated._index.token(t) for t in ("orbit", "cost")}
    assert terms == {f"mesh:acme:mem:{NETWORK}:term:fact:{t}" for t in tokens}


def test_a_view_built_before_the_index_is_built_again(
    store: RedisMemoryStore, redis: fakeredis.FakeRedis
) -> None:
    redis.set(f"mesh:acme:mem:{NETWORK}:built", 1)

    assert not store.is_built("acme", NETWORK)
    store.mark_built("acme", NETWORK, 600)
    assert store.is_built("acme", NETWORK)


def test_tokens_are_keyed_hashes_that_differ_by_key(redis: fakeredis.FakeRedis) -> None:
    one = redis_terms.TermIndex(redis, Sealer([KEY]).term_key)
    again = redis_terms.TermIndex(redis, Sealer([KEY]).term_key)
    other = redis_terms.TermIndex(redis, Sealer([Sealer.generate_key()]).term_key)

    assert one.token("orbit") == again.token("orbit") != other.token("orbit")
    assert len(one.token("orbit")) == 16 and one.token("orbit") != one.token("orbits")
    assert one.kid == again.kid != other.kid


def test_members_are_the_ids_raw_bytes(store: RedisMemoryStore, redis: fakeredis.FakeRedis) -> None:
    stored = item("Orbit")
    store.put(stored)

    (key,) = redis.keys(f"mesh:acme:mem:{NETWORK}:term:*")
    ((member, _),) = redis.zrange(key, 0, -1, withscores=True)
    assert UUID(bytes=member) == stored.id
