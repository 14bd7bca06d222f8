"""What lasts, what expires, and what a full network lets go first (domain/lifetimes.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from meshcore.domain.errors import InvalidInput
from meshcore.domain.lifetimes import (
    MAX_BOUND,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    Holding,
    MemoryPolicy,
    ends_with_its_task,
    excess,
    least_valuable,
    promoted,
    value,
)
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.network import NetworkConfig

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def item(
    kind: MemoryType = MemoryType.FACT, *, task: bool = False, confidence: float = 0.8
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id="acme",
        network_id=uuid4(),
        type=kind,
        content="Orbit ships in May",
        confidence=confidence,
        now=NOW,
        metadata={"task_id": str(uuid4())} if task else None,
    )


def holding(confidence: float = 0.5, *, age: timedelta = timedelta(0), uses: int = 0) -> Holding:
    return Holding(uuid4(), confidence, NOW - age, uses)


def test_by_default_nothing_expires_and_the_deployment_bounds_the_network() -> None:
    policy = NetworkConfig().memory

    assert all(policy.ttl(kind) is None for kind in MemoryType)
    assert policy.stamped(item()).expires_at is None
    assert policy.bound(100_000) == 100_000


def test_an_item_of_a_type_with_a_time_to_live_expires_that_long_after_it_was_written() -> None:
    policy = MemoryPolicy(ttl_seconds={MemoryType.CONTEXT: 3600})

    assert policy.stamped(item(MemoryType.CONTEXT)).expires_at == NOW + timedelta(hours=1)
    assert policy.stamped(item(MemoryType.FACT)).expires_at is None


def test_a_promoted_item_takes_no_expiry() -> None:
    policy = MemoryPolicy(ttl_seconds={MemoryType.FACT: 60})
    kept = promoted(item(), NOW)

    assert policy.stamped(kept).expires_at is None


@pytest.mark.parametrize(
    ("ttl", "field"),
    [
        ({MemoryType.FACT: MIN_TTL_SECONDS - 1}, "config.memory.ttl_seconds.fact"),
        ({MemoryType.DECISION: MAX_TTL_SECONDS + 1}, "config.memory.ttl_seconds.decision"),
        ({MemoryType.CONTEXT: 600.5}, "config.memory.ttl_seconds.context"),
        ({MemoryType.FEEDBACK: True}, "config.memory.ttl_seconds.feedback"),
        ({"opinion": 600}, "config.memory.ttl_seconds.opinion"),
    ],
)
def test_a_time_to_live_out_of_range_is_refused_naming_its_type(ttl: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        MemoryPolicy(ttl_seconds=ttl)

    assert refused.value.field == field


@pytest.mark.parametrize("seconds", [MIN_TTL_SECONDS, MAX_TTL_SECONDS])
def test_a_time_to_live_at_either_end_of_its_range_is_taken(seconds: int) -> None:
    assert MemoryPolicy(ttl_seconds={MemoryType.FACT: seconds}).ttl(MemoryType.FACT) == timedelta(
        seconds=seconds
    )


@pytest.mark.parametrize("max_items", [0, MAX_BOUND + 1])
def test_a_bound_out_of_range_is_refused_naming_it(max_items: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        MemoryPolicy(max_items=max_items)

    assert refused.value.field == "config.memory.max_items"


def test_a_networks_bound_may_lower_the_deployments_never_raise_it() -> None:
    assert MemoryPolicy(max_items=500).bound(1000) == 500
    assert MemoryPolicy(max_items=5000).bound(1000) == 1000


def test_a_context_item_of_a_task_ends_with_it_unless_promoted() -> None:
    context = item(MemoryType.CONTEXT, task=True)

    assert ends_with_its_task(context)
    assert not ends_with_its_task(promoted(context, NOW))
    assert not ends_with_its_task(item(MemoryType.CONTEXT))  # no task: it lasts
    assert not ends_with_its_task(item(MemoryType.FACT, task=True))  # facts last


def test_promoting_clears_the_expiry_and_keeps_the_first_promotion() -> None:
    first = promoted(MemoryPolicy(ttl_seconds={MemoryType.FACT: 60}).stamped(item()), NOW)
    again = promoted(first, NOW + DAY)

    assert first.expires_at is None and first.promoted_at == NOW
    assert again.promoted_at == NOW


@pytest.mark.parametrize(
    ("count", "bound", "evicted"),
    [
        (3, 3, 0),  # at the bound: nothing goes
        (4, 3, 1),  # past a small bound: back to it
        (100_000, 100_000, 0),
        (100_001, 100_000, 1001),  # past a large one: down to 99 % of it
        (99_500, 100_000, 0),  # within it after an eviction: no scan for a while
    ],
)
def test_past_its_bound_a_network_evicts_down_to_99_percent_of_it(
    count: int, bound: int, evicted: int
) -> None:
    assert excess(count, bound) == evicted


def test_value_grows_with_confidence_and_use_and_halves_every_30_days() -> None:
    base = value(holding(0.5), 0, NOW)

    assert base == pytest.approx(0.5)
    assert value(holding(0.9), 0, NOW) > base
    assert value(holding(0.5), 3, NOW) == pytest.approx(0.5 * (1 + 1.3862943611))
    assert value(holding(0.5, age=30 * DAY), 0, NOW) == pytest.approx(base / 2)


def test_the_least_valuable_go_first_lowest_confidence_then_least_used_then_oldest() -> None:
    doubtful = holding(0.2)
    unused = holding(0.6)
    used = holding(0.6, uses=4)
    old = holding(0.6, age=10 * DAY, uses=4)
    trusted = holding(0.95, age=DAY, uses=4)
    every = [trusted, used, old, unused, doubtful]

    assert least_valuable(every, 5, NOW) == [doubtful.id, unused.id, old.id, used.id, trusted.id]
    assert least_valuable(every, 0, NOW) == []


def test_of_items_worth_the_same_the_older_goes_first() -> None:
    older = Holding(uuid4(), 0.5, NOW - timedelta(seconds=1), 0)
    newer = Holding(uuid4(), 0.5, NOW, 0)

    assert least_valuable([newer, older], 1, NOW + 60 * DAY) == [older.id]
