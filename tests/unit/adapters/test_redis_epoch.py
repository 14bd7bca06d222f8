"""The fleet's epoch: a Redis that lost its data is noticed at the next check, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from meshcore.adapters.redis_epoch import EpochUnavailable, RedisEpoch

T0 = datetime(2026, 1, 1, tzinfo=UTC)




def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_running_epoch_is_no_loss(redis: fakeredis.FakeRedis) -> None:
    RedisEpoch(redis).start(at(0))
    epoch = RedisEpoch(redis)

    assert [epoch.lost_since(at(s)) for s in (1, 2, 3)] == [None, None, None]


def test_a_flushed_redis_is_a_loss_since_the_check_that_noticed_it(
    redis: fakeredis.FakeRedis,
) -> None:
    epoch = RedisEpoch(redis)
    epoch.start(at(0))
    assert epoch.lost_since(at(1)) is None

    redis.flushall()

    assert epoch.lost_since(at(5)) == at(5)
    assert epoch.lost_since(at(6)) is None  # reported once


def test_a_loss_another_process_noticed_first_is_dated_from_its_new_epoch(
    redis: fakeredis.FakeRedis,
) -> None:
    coordinator = RedisEpoch(redis)
    RedisEpoch(redis).start(at(0))
    assert coordinator.lost_since(at(1)) is None
    redis.flushall()
    RedisEpoch(redis).start(at(4))  # a worker started on the emptied Redis

    assert coordinator.lost_since(at(5)) == at(4)  # changed: lost before at(4)
    assert RedisEpoch(redis).lost_since(at(6)) is None  # a new process knew no other


def test_a_redis_that_does_not_answer_is_reported_as_unavailable(
    server: fakeredis.FakeServer, redis: fakeredis.FakeRedis
) -> None:
    server.connected = False

    with pytest.raises(EpochUnavailable):
        RedisEpoch(redis).lost_since(at(1))
