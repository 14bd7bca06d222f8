from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import fakeredis
import pytest

from meshcore.adapters.redis_activity import RedisAgentActivity

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=90)
AGENT, OTHER = uuid4(), uuid4()


@pytest.fixture
def activity() -> RedisAgentActivity:
    return RedisAgentActivity(fakeredis.FakeRedis(server=fakeredis.FakeServer()))


def began(activity: RedisAgentActivity, step: str, *, at: datetime = NOW) -> None:
    activity.began("acme", AGENT, step, now=at, until=at + LEASE)


def test_an_agent_counts_the_steps_it_is_running(activity: RedisAgentActivity) -> None:
    began(activity, "t/1/facts/1")
    began(activity, "t2/1/facts/1")

    assert activity.in_flight("acme", [AGENT, OTHER], now=NOW) == {AGENT: 2, OTHER: 0}

    activity.ended("acme", AGENT, "t/1/facts/1")

    assert activity.in_flight("acme", [AGENT], now=NOW) == {AGENT: 1}


def test_a_step_whose_worker_died_stops_counting_when_its_lease_ends(
    activity: RedisAgentActivity,
) -> None:
    began(activity, "t/1/facts/1")  # never ended: its worker died

    assert activity.in_flight("acme", [AGENT], now=NOW + LEASE - timedelta(seconds=1)) == {
        AGENT: 1
    }
    assert activity.in_flight("acme", [AGENT], now=NOW + LEASE) == {AGENT: 0}


def test_the_next_step_clears_the_leases_that_ended(activity: RedisAgentActivity) -> None:
    client = activity._redis
    began(activity, "dead/1/facts/1")
    began(activity, "t/1/facts/1", at=NOW + 2 * LEASE)

    assert client.zrange(f"mesh:acme:agent:{AGENT}:calls", 0, -1) == [b"t/1/facts/1"]


def test_tenants_do_not_see_each_others_steps(activity: RedisAgentActivity) -> None:
    began(activity, "t/1/facts/1")

    assert activity.in_flight("globex", [AGENT], now=NOW) == {AGENT: 0}


def test_without_redis_every_agent_reads_idle_and_steps_go_on() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    down = RedisAgentActivity(fakeredis.FakeRedis(server=server))

    down.began("acme", AGENT, "t/1/facts/1", now=NOW, until=NOW + LEASE)
    down.ended("acme", AGENT, "t/1/facts/1")

    assert down.in_flight("acme", [AGENT, OTHER], now=NOW) == {AGENT: 0, OTHER: 0}
