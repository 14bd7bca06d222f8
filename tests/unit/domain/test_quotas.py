from __future__ import annotations

import pytest

from meshcore.domain.errors import QuotaExceeded, TooManyTasksInFlight
from meshcore.domain.quotas import Quota, Quotas

QUOTAS = Quotas(
    networks_per_tenant=3, agents_per_network=8, memory_items_per_network=5, tasks_in_flight=2
)


@pytest.mark.parametrize("quota", list(Quota))
def test_the_last_slot_is_granted_and_the_next_refused_naming_the_quota(quota: Quota) -> None:
    limit = QUOTAS.limit(quota)
    QUOTAS.check(quota, used=limit - 1)

    with pytest.raises(QuotaExceeded) as refused:
        QUOTAS.check(quota, used=limit)

    assert (refused.value.quota, refused.value.limit) == (quota.value, limit)
    assert f"quota {quota.value} is {limit}" in str(refused.value)


def test_a_batch_that_would_overflow_is_refused_whole() -> None:
    QUOTAS.check(Quota.AGENTS, used=0, adding=8)

    with pytest.raises(QuotaExceeded, match="would have 9 agents"):
        QUOTAS.check(Quota.AGENTS, used=0, adding=9)


def test_only_the_tasks_in_flight_refusal_says_when_to_retry() -> None:
    with pytest.raises(TooManyTasksInFlight) as busy:
        QUOTAS.check(Quota.TASKS_IN_FLIGHT, used=2)
    assert busy.value.retry_after_seconds > 0
    assert "retry once some finish" in str(busy.value)

    with pytest.raises(QuotaExceeded) as full:
        QUOTAS.check(Quota.NETWORKS, used=3)
    assert not isinstance(full.value, TooManyTasksInFlight)
    assert "delete one" in str(full.value)
