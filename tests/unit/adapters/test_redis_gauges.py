"""Queue depth and age, and breaker states, read from Redis at scrape time."""

from __future__ import annotations

import json
import time

import fakeredis

from meshcore.adapters.breaker import PREFIX, BreakerBoard, BreakerPolicy
from meshcore.adapters.redis_gauges import BreakerGauges, QueueGauges, priority_lists

STEPS = (0, 3, 6, 9)


def message(sent_at: float | None) -> str:
    headers = {"task": "mesh.run_agent"} | ({"mesh_sent_at": sent_at} if sent_at else {})
    return json.dumps({"body": "", "headers": headers, "properties": {}})


def samples(collector: object) -> dict[tuple[str, str], float]:
    return {
        (family.name, sample.labels.get("queue") or sample.labels.get("model")): sample.value
        for family in collector.collect()  # type: ignore[attr-defined]
        for sample in family.samples
    }


def test_depth_sums_every_priority_list_and_age_is_the_oldest_waiting() -> None:
    client = fakeredis.FakeRedis()
    now = time.time()
    high, normal = priority_lists("agent.content", STEPS)[:2]
    assert (high, normal) == ("agent.content", "agent.content\x06\x163")
    client.lpush(high, message(now - 5))  # LPUSH: the tail is the oldest
    client.lpush(high, message(now - 1))
    client.lpush(normal, message(now - 30))
    client.lpush("coordinator", message(None))  # from an older release: no stamp

    got = samples(QueueGauges(client, ["agent.content", "coordinator", "agent.critic"], STEPS))

    assert got[("mesh_queue_depth", "agent.content")] == 3
    assert 29 <= got[("mesh_queue_oldest_message_age_seconds", "agent.content")] < 40
    assert got[("mesh_queue_depth", "coordinator")] == 1
    assert got[("mesh_queue_oldest_message_age_seconds", "coordinator")] == 0
    assert got[("mesh_queue_depth", "agent.critic")] == 0


def test_no_queue_gauges_while_redis_is_away() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    client = fakeredis.FakeRedis(server=server)
    assert samples(QueueGauges(client, ["coordinator"], STEPS)) == {}


def test_breakers_report_closed_half_open_and_open() -> None:
    client = fakeredis.FakeRedis()
    board = BreakerBoard(client, BreakerPolicy(recovery_seconds=30))
    seconds, _ = client.time()
    client.hset(f"{PREFIX}openai/gpt-4o", mapping={"state": "open", "opened_at": seconds})
    client.hset(f"{PREFIX}gemini/gemini-2.0-flash", mapping={"state": "half_open"})

    got = samples(BreakerGauges(board, ["anthropic/claude-3-7-sonnet-20250219", "openai/gpt-4o"]))

    assert got == {
        ("mesh_breaker_state", "anthropic/claude-3-7-sonnet-20250219"): 0,
        ("mesh_breaker_state", "openai/gpt-4o"): 2,
        ("mesh_breaker_state", "gemini/gemini-2.0-flash"): 1,
    }
