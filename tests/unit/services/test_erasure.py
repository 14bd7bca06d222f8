"""Erasure in the services: a tenant's whole state, a network's leases and a late memory write."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.adapters.redis_tenant import RedisTenantState
from meshcore.domain.errors import MemoryViewUnavailable, Unauthenticated
from meshcore.domain.keys import ALL_SCOPES
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.services.erasure import ErasureService
from meshcore.services.keys import KeyService
from meshcore.services.memory_view import MemoryView
from tests.fakes import FakeClock, FakeKeyStore, FakeMesh


class FakeRecord:
    """The TenantRecord port: counts what each pass erased, and notes the order of calls."""

    def __init__(self, calls: list[str], passes: list[dict[str, int]]) -> None:
        self.calls, self.passes = calls, passes

    def erase(self, tenant_id: str) -> dict[str, int]:
        self.calls.append(f"record {tenant_id}")
        return self.passes.pop(0)


class FakeState:
    def __init__(self, calls: list[str], *, is_up: bool = True) -> None:
        self.calls, self.is_up = calls, is_up

    def purge(self, tenant_id: str) -> int:
        if not self.is_up:
            raise MemoryViewUnavailable("Redis is unavailable")
        self.calls.append(f"redis {tenant_id}")
        return 3


@pytest.fixture
def keys() -> KeyService:
    return KeyService(store=FakeKeyStore(), clock=FakeClock(), secret=b"s")


def test_a_tenant_is_purged_from_redis_first_and_erased_twice_around_the_key_cache(
    keys: KeyService,
) -> None:
    calls: list[str] = []
    record = FakeRecord(calls, [{"networks": 2, "api_keys": 1}, {"networks": 1, "api_keys": 0}])
    service = ErasureService(
        record=record, state=FakeState(calls), keys=keys, sleep=lambda s: calls.append(f"wait {s}")
    )

    erased = service.erase_tenant("acme")

    settle = keys.cache_seconds + 1.0
    assert calls == ["redis acme", "record acme", f"wait {settle}", "record acme", "redis acme"]
    assert erased.rows == {"networks": 3, "api_keys": 1}
    assert (erased.redis_keys, erased.total) == (6, 10)


def test_an_erasure_with_redis_away_is_refused_before_the_record_is_touched(
    keys: KeyService,
) -> None:
    calls: list[str] = []
    service = ErasureService(
        record=FakeRecord(calls, []), state=FakeState(calls, is_up=False), keys=keys
    )

    with pytest.raises(MemoryViewUnavailable):
        service.erase_tenant("acme")

    assert calls == []


def test_an_erased_tenants_keys_leave_the_cache_at_once_and_no_one_elses(
    keys: KeyService,
) -> None:
    store = keys._store
    _, doomed = keys.create(tenant_id="acme", scopes=ALL_SCOPES)
    _, kept = keys.create(tenant_id="globex", scopes=ALL_SCOPES)
    for text in (doomed, kept):
        keys.authenticate(text)  # now cached
    store.rows.clear()  # the record erased them (both, to show which cache entry is kept)

    keys.forget("acme")

    with pytest.raises(Unauthenticated):
        keys.authenticate(doomed)
    assert keys.authenticate(kept).tenant_id == "globex"  # still cached: not this tenant's


def test_the_tenant_state_purges_only_that_tenants_prefix_even_with_glob_characters() -> None:
    mesh = FakeMesh.build("a*")
    for key in ("mesh:a*:mem:n:item:1", "mesh:a*:agent:x:calls", "mesh:ab:mem:n:item:1"):
        mesh.redis.set(key, 1)

    removed = RedisTenantState(mesh.redis).purge("a*")

    assert removed == 2
    assert [k.decode() for k in mesh.redis.keys("*")] == ["mesh:ab:mem:n:item:1"]


def test_deleting_a_network_drops_its_agents_leases() -> None:
    mesh = FakeMesh.build("acme")
    doomed, kept = mesh.create_network(), mesh.create_network()
    activity = RedisAgentActivity(mesh.redis)
    now = mesh.clock.now()
    for agent in (doomed.agents[0], kept.agents[0]):
        activity.began("acme", agent.id, "step", now=now, until=now + timedelta(minutes=5))

    mesh.networks.delete(doomed.id)

    assert activity.in_flight("acme", [doomed.agents[0].id], now=now) == {doomed.agents[0].id: 0}
    assert not mesh.redis.exists(f"mesh:acme:agent:{doomed.agents[0].id}:calls")
    assert mesh.redis.exists(f"mesh:acme:agent:{kept.agents[0].id}:calls")


def test_a_memory_write_that_lands_after_its_network_was_deleted_leaves_no_view() -> None:
    mesh = FakeMesh.build("acme")
    network = mesh.create_network()
    item = MemoryItem.create(
        tenant_id="acme",
        network_id=network.id,
        type=MemoryType.FACT,
        content="late finding",
        confidence=1.0,
        now=mesh.clock.now(),
    )
    view = MemoryView(tenant_id="acme", uow=mesh.uow, store=mesh.store)
    mesh.networks.delete(network.id)  # between a step's commit and its publish

    view.publish(item)

    assert not [k for k in mesh.redis.keys("*") if str(network.id).encode() in k]
