"""A worker checks a message's tenant against the record: another tenant's task is left alone.

The Celery tasks run in this process (`apply`), on the real Postgres and Redis, with the
messages a forged or misrouted sender could make: the right task id, the wrong tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa
from celery import Celery
from structlog.testing import capture_logs

import meshworkers.tasks  # noqa: F401  (registers the shared tasks with every app)
from meshcore.bootstrap import Mesh
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.settings import Settings
from meshworkers.app import create_celery
from meshworkers.tasks import mesh_of
from tests.conftest import API_KEY_SECRET, DATA_KEYS

pytestmark = pytest.mark.integration

OWNER, STRANGER = f"owner-{uuid4().hex[:8]}", f"stranger-{uuid4().hex[:8]}"
PLAN = [
    {"key": "facts", "agent": "research", "description": "Find facts", "depends_on": []},
    {"key": "copy", "agent": "content", "description": "Write", "depends_on": ["facts"]},
]


@pytest.fixture(scope="module")
def app(database_url: str, redis_url: str) -> Iterator[Celery]:
    # A Redis database of its own: these tests count what is queued in it.
    own_redis = redis_url.rsplit("/", 1)[0] + "/10"
    redis.Redis.from_url(own_redis).flushdb()
    settings = Settings(
        database_url=database_url,
        redis_url=own_redis,
        api_key_secret=API_KEY_SECRET,
        data_keys=DATA_KEYS,
    )
    app = create_celery(settings)
    yield app
    mesh_of(app).close()


@pytest.fixture(scope="module")
def mesh(app: Celery) -> Mesh:
    return mesh_of(app)


@pytest.fixture
def running(app: Celery, mesh: Mesh) -> Task:
    """The owner's task, planned and running its first wave (its step messages queued)."""
    services = mesh.tenant(OWNER)
    network = services.networks.create(
        name=f"it-{uuid4().hex[:8]}", description="", config=NetworkConfig()
    )
    task = services.tasks.submit(
        network.id,
        description="Write the launch email",
        context={},
        priority=Priority.NORMAL,
        auto_process=False,
        plan=PLAN,
    )
    app.tasks["mesh.coordinate"].apply(args=[OWNER, str(task.id)]).get()
    task = services.tasks.get(network.id, task.id)
    assert task.status is TaskStatus.RUNNING
    return task


def snapshot(mesh: Mesh, task: Task) -> dict[str, object]:
    """What a message could change: the task's rows in every table, and everything queued."""
    with mesh.connections.engine.connect() as db:
        rows = {
            table: db.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE task_id = :t"), {"t": task.id}
            ).scalar()
            for table in ("subtasks", "steps", "task_events", "step_attempts")
        }
        rows["task"] = tuple(
            db.execute(
                sa.text(
                    "SELECT status, iteration, wave, updated_at, heartbeat_at, error"
                    " FROM tasks WHERE id = :t"
                ),
                {"t": task.id},
            ).one()
        )
    client = mesh.connections.redis
    queued = {
        key: client.llen(key) if client.type(key) == b"list" else client.type(key)
        for key in client.scan_iter()
    }
    return {"rows": rows, "redis": queued}


def messages(task: Task, tenant: str) -> list[tuple[str, list[object]]]:
    t = str(task.id)
    return [
        ("mesh.coordinate", [tenant, t]),
        ("mesh.run_agent", [tenant, t, 1, "facts", "research"]),
        ("mesh.collect", [tenant, t, 1, 0]),
        ("mesh.review", [tenant, t, 1]),
        ("mesh.expire", [tenant, t]),
    ]


def test_a_message_naming_another_tenant_does_nothing_and_records_nothing(
    app: Celery, mesh: Mesh, running: Task
) -> None:
    before = snapshot(mesh, running)
    for name, args in messages(running, STRANGER):
        with capture_logs() as logs:
            result = app.tasks[name].apply(args=args)
        assert result.successful(), (name, result.traceback)
        assert result.get() in (None, "skipped")
        warnings = [e for e in logs if e["event"] == "task.tenant_mismatch"]
        assert [(w["log_level"], w["task_id"], w["tenant"]) for w in warnings] == [
            ("warning", str(running.id), STRANGER)
        ], name
    assert snapshot(mesh, running) == before
    # The owner's own copy of a message still does its work: the test can tell the two apart.
    assert app.tasks["mesh.run_agent"].apply(args=messages(running, OWNER)[1][1]).get() == (
        "completed"
    )
    assert snapshot(mesh, running)["rows"]["steps"] == before["rows"]["steps"] + 1


def test_a_message_for_a_task_that_is_gone_does_nothing_quietly(app: Celery, mesh: Mesh) -> None:
    gone = Task.create(
        tenant_id=OWNER,
        network_id=uuid4(),
        description="never recorded",
        context={},
        priority=Priority.NORMAL,
        timeout_seconds=60,
        now=mesh.clock.now(),
    )
    for name, args in messages(gone, OWNER):
        with capture_logs() as logs:
            result = app.tasks[name].apply(args=args)
        assert result.successful(), (name, result.traceback)
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
        assert "task.gone" in [e["event"] for e in logs]


def test_the_owner_of_a_task_is_found_across_tenants(mesh: Mesh, running: Task) -> None:
    assert mesh.uow.owner_of(running.id) == OWNER
    assert mesh.uow.owner_of(UUID(int=0)) is None
