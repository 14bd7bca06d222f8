"""Content at rest is sealed: a canary a client submits is in no dump of Postgres or Redis.

The API and real workers (`mesh worker`) on a private redis-server and the test Postgres,
under a data key of this module's own. A canary goes in through the HTTP API in a task's
description and context and in a memory item, the task runs to completion on the offline
model (whose answer quotes the task), a rating's comment quotes it too, and then: the API
answers the canary intact, while a `pg_dump` of the database and every value of every Redis
key hold no trace of it. Then
`mesh data-keys rotate` re-seals the tenant's content under a new first key, and an API that
holds only the new key reads back everything as it was. On the embedded default's SQLite
file, rows written before sealing began still read, and a rotation seals them.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa
from flask import Flask

from meshapi.app import create_app
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.migrate import upgrade
from meshcore.adapters.sql.rotation import rotate_record
from meshcore.adapters.sql.tables import memory_items, tasks
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.agent_types import own_queue
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.network import SPECIALISTS, AgentType, Network, NetworkConfig
from meshcore.domain.result import TaskResult
from meshcore.domain.task import Priority, Task
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.drills.harness import PrivateRedis
from tests.integration.api.client import API, NETWORKS, ApiClient, new_key
from tests.integration.api.record import Record
from tests.integration.fleet import Fleet, WorkerSpec, fleet

pytestmark = pytest.mark.integration

CANARY = f"canary-{uuid4().hex}"
OLD_KEY, NEW_KEY = Sealer.generate_key(), Sealer.generate_key()
TENANT = f"sealed-{uuid4().hex[:8]}"
MEMORY = MemoryQuery()
RACED = f"sealed-raced-{uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(Path(tmp_path_factory.mktemp("encryption-redis")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(database_url: str, private_redis: PrivateRedis) -> Iterator[Fleet]:
    specs = [
        WorkerSpec("coordinator@sealed", ["coordinator"], concurrency=4),
        WorkerSpec("agents@sealed", [own_queue(t) for t in SPECIALISTS], concurrency=8),
        WorkerSpec("critic@sealed", [own_queue(AgentType.CRITIC)], concurrency=4),
    ]
    with fleet(database_url, private_redis.url, specs, env={"MESH_DATA_KEYS": OLD_KEY}) as running:
        yield running


def api(database_url: str, redis_url: str, data_keys: str) -> Flask:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        tenant=TENANT,
        api_key_secret=API_KEY_SECRET,
        data_keys=data_keys,
    )
    app = create_app(settings)
    app.test_client_class = ApiClient
    return app


def client_of(app: Flask, error_schema: dict[str, Any]) -> ApiClient:
    client = app.test_client()
    assert isinstance(client, ApiClient)
    client.error_schema = error_schema
    return client.use_key(new_key(app, TENANT))


@pytest.fixture(scope="module")
def error_schema(database_url: str, redis_url: str) -> dict[str, Any]:
    app = api(database_url, redis_url, DATA_KEYS)
    try:
        document = app.test_client().get("/api/mesh/openapi.json").get_json()
    finally:
        app.extensions["mesh"].close()
    return document["components"]["schemas"]["Error"]


@pytest.fixture(scope="module")
def submitted(
    workers: Fleet,
    database_url: str,
    private_redis: PrivateRedis,
    error_schema: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """The canary's network, memory item and finished task, as the API answered them."""
    app = api(database_url, private_redis.url, OLD_KEY)
    client = client_of(app, error_schema)
    engine = sa.create_engine(database_url)
    try:
        network = client.post(NETWORKS, json={"name": "sealed"}).get_json()
        kind = {"name": "sealed-kind", "description": "keeps secrets", "role": f"Know {CANARY}."}
        assert client.post(f"{API}/agent-types", json=kind).status_code == 201
        memory_url = f"{NETWORKS}/{network['id']}/memory"
        item = client.post(
            memory_url,
            json={
                "type": "fact",
                "content": f"{CANARY} is the codename",
                "metadata": {"n": CANARY},
            },
        )
        assert item.status_code == 201, item.get_data(as_text=True)
        response = client.post(
            f"{NETWORKS}/{network['id']}/tasks",
            json={"description": f"Write the launch note for {CANARY}", "context": {"c": CANARY}},
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        task_url = response.headers["Location"]
        deadline = time.monotonic() + 120
        task = client.get(task_url).get_json()
        while task["status"] not in ("completed", "failed", "timed_out"):
            assert time.monotonic() < deadline, f"task still {task['status']}"
            time.sleep(0.5)
            task = client.get(task_url).get_json()
        rating_url = f"{task_url}/rating"
        rated = client.post(rating_url, json={"score": 4, "comment": f"Keep {CANARY} quiet"})
        assert rated.status_code == 201, rated.get_data(as_text=True)
        memory = client.get(memory_url, query_string={"page_size": 100}).get_json()
        yield {
            "network": network,
            "item": item.get_json(),
            "task": task,
            "task_url": task_url,
            "rating": rated.get_json(),
            "rating_url": rating_url,
            "memory": memory,
            "memory_url": memory_url,
        }
    finally:
        app.extensions["mesh"].close()
        Record(engine, redis.Redis.from_url(private_redis.url), TENANT).purge()
        engine.dispose()


def test_the_api_answers_the_canary_intact(submitted: dict[str, Any]) -> None:
    task = submitted["task"]

    assert task["status"] == "completed", task.get("error")
    assert task["description"] == f"Write the launch note for {CANARY}"
    assert task["context"] == {"c": CANARY}
    assert CANARY in task["result"]["answer"]  # the offline model quotes the task
    mine = [m for m in submitted["memory"] if m["id"] == submitted["item"]["id"]]
    assert [(m["content"], m["metadata"]) for m in mine] == [
        (f"{CANARY} is the codename", {"n": CANARY})
    ]
    assert len(submitted["memory"]) > 1  # and what the task's steps wrote
    assert submitted["rating"]["comment"] == f"Keep {CANARY} quiet"
    rated = [m for m in submitted["memory"] if m["metadata"].get("source") == "rating"]
    assert [m["content"].endswith(f"4/5: Keep {CANARY} quiet") for m in rated] == [True]


def test_a_pg_dump_of_the_database_holds_no_trace_of_the_canary(
    submitted: dict[str, Any], database_url: str
) -> None:
    dumped = pg_dump(database_url)

    assert submitted["task"]["id"] in dumped  # the dump does hold the task's rows
    assert submitted["item"]["id"] in dumped
    assert CANARY not in dumped


def test_no_redis_value_holds_the_canary(
    submitted: dict[str, Any], private_redis: PrivateRedis
) -> None:
    values = every_redis_value(redis.Redis.from_url(private_redis.url))

    assert submitted["item"]["id"].encode() in values  # the memory view does hold the item
    assert CANARY.encode() not in values


def test_after_a_rotation_an_api_with_only_the_new_key_reads_everything_back(
    submitted: dict[str, Any],
    database_url: str,
    private_redis: PrivateRedis,
    error_schema: dict[str, Any],
) -> None:
    both = f"{NEW_KEY},{OLD_KEY}"
    first = rotate(database_url, private_redis.url, both)
    again = rotate(database_url, private_redis.url, both)
    app = api(database_url, private_redis.url, NEW_KEY)
    try:
        client = client_of(app, error_schema)
        task = client.get(submitted["task_url"]).get_json()
        memory = client.get(submitted["memory_url"], query_string={"page_size": 100}).get_json()
        rating = client.get(submitted["rating_url"]).get_json()
    finally:
        app.extensions["mesh"].close()

    assert first.returncode == 0, first.stderr
    tables = (
        "tasks", "subtasks", "steps", "task_events", "memory_items", "agent_types", "tool_calls",
        "task_ratings", "memory view",
    )
    resealed = dict(re.findall(r"^(.+): (\d+) re-sealed, 0 already current$", first.stdout, re.M))
    assert sorted(resealed) == sorted(tables), first.stdout
    assert resealed["tasks"] == "1"
    assert resealed["agent_types"] == "1"
    assert resealed["task_ratings"] == "1"
    assert resealed["memory_items"] == resealed["memory view"]  # every item, in both
    assert again.returncode == 0, again.stderr
    current = dict(re.findall(r"^(.+): 0 re-sealed, (\d+) already current$", again.stdout, re.M))
    assert current == resealed, again.stdout
    assert task == submitted["task"]
    assert memory == submitted["memory"]
    assert rating == submitted["rating"]
    assert CANARY not in pg_dump(database_url)


def test_clear_rows_from_before_sealing_still_read_and_a_rotation_seals_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'mesh.db'}"
    upgrade(url)
    engine = create_engine(url)
    sealer = Sealer([NEW_KEY])
    uow = SqlUnitOfWorkFactory(engine, sealer)
    task, item = legacy_rows(engine, uow)

    with uow(TENANT) as work:
        before = work.tasks.get(task.id), work.memory.list(task.network_id, MEMORY)
    done = {t.table: t for t in rotate_record(engine, sealer, batch=1)}
    again = {t.table: t for t in rotate_record(engine, sealer, batch=1)}
    with uow(TENANT) as work:
        after = work.tasks.get(task.id), work.memory.list(task.network_id, MEMORY)
    with engine.connect() as db:
        stored = repr(
            db.execute(sa.select(tasks)).all() + db.execute(sa.select(memory_items)).all()
        )
    engine.dispose()

    assert (before[0].description, before[0].context) == (task.description, {"c": CANARY})
    assert before[0].result == TaskResult(answer=CANARY) and before[0].error == CANARY
    assert [(i.content, i.metadata) for i in before[1]] == [(item.content, item.metadata)]
    assert (done["tasks"].resealed, done["memory_items"].resealed) == (1, 1)
    assert (again["tasks"].resealed, again["tasks"].current) == (0, 1)
    assert CANARY not in stored
    assert (after[0].description, after[0].context, after[0].result) == (
        before[0].description,
        before[0].context,
        before[0].result,
    )
    assert [(i.content, i.metadata) for i in after[1]] == [(item.content, item.metadata)]


def test_a_rotation_keeps_what_mesh_writes_to_a_row_between_its_read_and_its_update(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    mesh_writes = create_engine(database_url)
    old, both = Sealer([OLD_KEY]), Sealer([NEW_KEY, OLD_KEY])
    task, _item = legacy_rows(engine, SqlUnitOfWorkFactory(engine, old), RACED)
    with SqlUnitOfWorkFactory(engine, old)(RACED) as work:  # sealed under the old key
        current = work.tasks.get(task.id)
        work.tasks.save(current)
        work.commit()

    def mesh_saves_first(_conn, _cursor, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE tasks") and not wrote:
            wrote.append(True)
            with SqlUnitOfWorkFactory(mesh_writes, both)(RACED) as work:
                task = work.tasks.get_locked(current.id)
                task.error = "what Mesh wrote meanwhile"
                work.tasks.save(task)
                work.commit()

    wrote: list[bool] = []
    sa.event.listen(engine, "before_cursor_execute", mesh_saves_first)
    try:
        raced = {t.table: t for t in rotate_record(engine, both, tenant_id=RACED)}
    finally:
        sa.event.remove(engine, "before_cursor_execute", mesh_saves_first)
    again = {t.table: t for t in rotate_record(engine, both, tenant_id=RACED)}
    with SqlUnitOfWorkFactory(engine, Sealer([NEW_KEY]))(RACED) as work:
        after = work.tasks.get(task.id)
    with engine.begin() as db:
        db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), {"t": RACED})
    engine.dispose()
    mesh_writes.dispose()

    assert (raced["tasks"].resealed, raced["tasks"].changed) == (0, 1)
    assert (again["tasks"].resealed, again["tasks"].changed) == (1, 0)
    assert after.error == "what Mesh wrote meanwhile"
    assert after.description == task.description


def legacy_rows(
    engine: sa.Engine, uow: SqlUnitOfWorkFactory, tenant: str = TENANT
) -> tuple[Task, MemoryItem]:
    """A task and a memory item whose content columns hold clear values, as before sealing."""
    now = datetime.now(UTC)
    network = Network.create(
        tenant_id=tenant, name="n", description="", config=NetworkConfig(), now=now
    )
    task = Task.create(
        tenant_id=tenant,
        network_id=network.id,
        description=f"Write about {CANARY}",
        context={"c": CANARY},
        priority=Priority.NORMAL,
        timeout_seconds=300,
        now=now,
    )
    item = MemoryItem.create(
        tenant_id=tenant,
        network_id=network.id,
        type=MemoryType.FACT,
        content=f"{CANARY} fact",
        confidence=0.9,
        now=now,
        metadata={"n": CANARY},
    )
    with uow(tenant) as work:
        work.networks.add(network)
        work.tasks.add(task)
        work.memory.add(item)
        work.commit()
    with engine.begin() as db:
        db.execute(
            tasks.update()
            .where(tasks.c.id == task.id)
            .values(
                description=task.description,
                context=task.context,
                result={"answer": CANARY},
                error=CANARY,
            )
        )
        db.execute(
            memory_items.update()
            .where(memory_items.c.id == item.id)
            .values(content=item.content, metadata=item.metadata)
        )
    return task, item


def rotate(database_url: str, redis_url: str, keys: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESH_")}
    env.update(MESH_DATABASE_URL=database_url, MESH_REDIS_URL=redis_url, MESH_DATA_KEYS=keys)
    return subprocess.run(
        [sys.executable, "-m", "meshcli.main", "data-keys", "rotate", "--tenant", TENANT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def pg_dump(database_url: str) -> str:
    """The database's rows, as `pg_dump --data-only` writes them."""
    url = sa.make_url(database_url)
    binary = shutil.which("pg_dump") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))[-1]
    dumped = subprocess.run(
        [
            binary,
            "--data-only",
            *("--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)),
            *("--username", url.username or "postgres", url.database or "test"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dumped.stdout


def every_redis_value(client: redis.Redis) -> bytes:
    """Every key and every value in Redis, read by type (DUMP's bytes may be compressed)."""
    found = []
    for key in client.scan_iter(count=1000):
        found.append(key)
        kind = client.type(key)
        if kind == b"string":
            found.append(client.get(key) or b"")
        elif kind == b"hash":
            found.extend(b for pair in client.hgetall(key).items() for b in pair)
        elif kind == b"list":
            found.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            found.extend(client.smembers(key))
        elif kind == b"zset":
            found.extend(m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == b"stream":
            found.append(repr(client.xrange(key)).encode())
        else:
            raise AssertionError(f"a Redis key of an unexpected type: {key!r} {kind!r}")
    return b"\n".join(found)
