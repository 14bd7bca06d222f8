"""Gauges read from Redis when Prometheus scrapes: the queues' backlog and the breakers.

They describe the fleet, not one process, so only the API serves them (every API replica
reports the same values; dashboards take the max). Reading at scrape time keeps them exact
without any process having to publish them. Admission control reads the same depths
(`queue_depths`, through meshcore.adapters.redis_backlog).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from meshcore.adapters.breaker import BreakerBoard

# Celery's Redis transport keeps one list per priority step: "queue" for step 0, and
# "queue\x06\x16<step>" for the others. It LPUSHes and BRPOPs, so the oldest is at the tail.
PRIORITY_SEPARATOR = "\x06\x16"
SENT_AT_HEADER = "mesh_sent_at"
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


def priority_lists(queue: str, steps: Sequence[int]) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in steps]


def queue_depths(
    client: redis.Redis, queues: Sequence[str], steps: Sequence[int]
) -> dict[str, int]:
    """Messages waiting on each queue, its priority lists summed, in one round trip.

    Taken messages are not counted: the transport moves them out of the lists (into its
    unacked hash) as it hands them to a worker. RedisError when Redis does not answer.
    """
    return {q: sum(n for n, _ in lists) for q, lists in _read(client, queues, steps).items()}


def _read(
    client: redis.Redis, queues: Sequence[str], steps: Sequence[int], *, tails: bool = False
) -> dict[str, list[tuple[int, bytes | None]]]:
    """Each queue's priority lists as (length, oldest message if `tails`), in one round trip."""
    lists = {q: priority_lists(q, steps) for q in queues}
    pipe = client.pipeline(transaction=False)
    for names in lists.values():
        for name in names:
            pipe.llen(name)
            if tails:
                pipe.lindex(name, -1)
    replies = iter(pipe.execute())
    return {
        queue: [(next(replies), next(replies) if tails else None) for _ in names]
        for queue, names in lists.items()
    }


class QueueGauges(Collector):
    def __init__(self, client: redis.Redis, queues: Sequence[str], steps: Sequence[int]) -> None:
        self._client, self._queues, self._steps = client, queues, steps

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "mesh_queue_depth", "Messages waiting on a queue, every priority list summed",
            labels=["queue"],
        )
        age = GaugeMetricFamily(
            "mesh_queue_oldest_message_age_seconds",
            "How long the oldest waiting message has waited", labels=["queue"],
        )
        try:
            found = _read(self._client, self._queues, self._steps, tails=True)
        except redis.RedisError:
            return  # no fleet gauges while Redis is away; `up` and /readyz say so
        now = time.time()
        for queue, lists in found.items():
            sent = [s for s in (_sent_at(tail) for _, tail in lists) if s is not None]
            depth.add_metric([queue], sum(n for n, _ in lists))
            age.add_metric([queue], max(0.0, now - min(sent)) if sent else 0.0)
        yield depth
        yield age


class BreakerGauges(Collector):
    def __init__(self, board: BreakerBoard, models: Sequence[str]) -> None:
        self._board, self._models = board, models

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "mesh_breaker_state", "0 closed, 1 half open, 2 open", labels=["model"]
        )
        try:
            for model in sorted({*self._models, *self._board.known()}):
                gauge.add_metric([model], BREAKER_STATES.get(self._board.breaker(model).state, 0))
        except redis.RedisError:
            return
        yield gauge


def _sent_at(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)["headers"][SENT_AT_HEADER]
        return float(value)
    except (ValueError, KeyError, TypeError):
        return None
