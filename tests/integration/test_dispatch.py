"""What the Celery dispatcher puts on the broker: routing by agent type, and priority."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
import redis
from celery import Celery

from meshcore.adapters.celery_dispatch import CeleryDispatcher
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask
from meshcore.domain.task import Priority
from meshcore.ports import TaskRef
from meshcore.settings import Settings
from meshworkers.app import create_celery

pytestmark = pytest.mark.integration

# kombu's Redis transport keeps one list per priority step: "<queue>" for 0, then
# "<queue>\x06\x16<step>" for the others.
SEP = "\x06\x16"


@pytest.fixture
def broker(redis_url: str) -> Iterator[tuple[Celery, redis.Redis]]:
    url = redis_url.rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = create_celery(Settings(database_url="sqlite://", redis_url=url))
    yield app, client
    client.flushdb()
    client.close()


def queued(client: redis.Redis, list_key: str) -> list[str]:
    import json

    return [json.loads(m)["headers"]["task"] for m in client.lrange(list_key, 0, -1)]


def test_priorities_map_to_the_brokers_priority_lists(broker: tuple[Celery, redis.Redis]) -> None:
    app, client = broker
    dispatcher = CeleryDispatcher(app)

    for priority in (Priority.HIGH, Priority.NORMAL, Priority.LOW):
        dispatcher.coordinate(TaskRef("default", uuid4(), priority))

    assert queued(client, "coordinator") == ["mesh.coordinate"]
    assert queued(client, f"coordinator{SEP}3") == ["mesh.coordinate"]
    assert queued(client, f"coordinator{SEP}6") == ["mesh.coordinate"]


def test_a_new_task_waits_one_step_behind_the_work_of_started_tasks(
    broker: tuple[Celery, redis.Redis],
) -> None:
    app, client = broker
    dispatcher = CeleryDispatcher(app)

    dispatcher.coordinate(TaskRef("default", uuid4(), Priority.NORMAL), new=True)
    dispatcher.review(TaskRef("default", uuid4(), Priority.NORMAL), 1)
    dispatcher.coordinate(TaskRef("default", uuid4(), Priority.LOW), new=True)
    dispatcher.coordinate(TaskRef("default", uuid4(), Priority.HIGH), new=True)

    # A started normal task's next message is taken before a new one; a new high task ties
    # with started normal work; nothing overtakes a started high task.
    assert queued(client, f"coordinator{SEP}6") == ["mesh.coordinate"]
    assert queued(client, f"coordinator{SEP}9") == ["mesh.coordinate"]
    assert queued(client, f"coordinator{SEP}3") == ["mesh.coordinate"]
    assert queued(client, f"agent.critic{SEP}3") == ["mesh.review"]
    assert client.llen("coordinator") == 0


def test_a_wave_goes_to_each_agents_queue(broker: tuple[Celery, redis.Redis]) -> None:
    app, client = broker
    subtasks = [
        PlannedSubtask("facts", AgentType.RESEARCH, "find facts"),
        PlannedSubtask("copy", AgentType.CONTENT, "write copy"),
    ]

    CeleryDispatcher(app).run_wave(TaskRef("default", uuid4(), Priority.HIGH), 1, 0, subtasks)

    assert queued(client, "agent.research") == ["mesh.run_agent"]
    assert queued(client, "agent.content") == ["mesh.run_agent"]
    assert client.llen("coordinator") == 0  # the callback waits for the header in the backend
