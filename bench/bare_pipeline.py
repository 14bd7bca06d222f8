"""The bare-Celery baseline: Mesh's task shape with none of Mesh's code.

    plan (coordinator) -> chord of 5 steps, one on each specialist queue
                       -> collect (coordinator): one Postgres INSERT
                       -> critic (agent.critic): pushes its run id to a Redis list

Every step sleeps `step_ms` in place of a model call (0: no-op). The app is built by Mesh's own
`create_celery`, so the broker and delivery settings (acks late, prefetch 1, priorities, JSON)
are the same and the ratio against Mesh measures Mesh's code, not a different Celery setup.
Workers load this module with `celery -A bench.bare_pipeline:app worker`; the driver (the
benchmark process) calls `run` to send pipelines and wait for them.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence

import psycopg
import redis
from celery import chord

from meshcore.settings import Settings
from meshworkers.app import create_celery

SPECIALISTS = ("content", "design", "analytics", "personalization", "research")
DONE = "bare:done"

REDIS_URL = os.environ.get("BENCH_BARE_REDIS_URL", "redis://127.0.0.1:6379/7")
DATABASE_URL = os.environ.get(
    "BENCH_BARE_DATABASE_URL", "postgresql://postgres@127.0.0.1/mesh_bench"
)

app = create_celery(Settings(redis_url=REDIS_URL, database_url=DATABASE_URL))
app.conf.imports = ()
app.conf.beat_schedule = {}

_local = threading.local()


def _db() -> psycopg.Connection:
    # One connection per worker thread: the pool is threads, so no connection is shared.
    if getattr(_local, "conn", None) is None:
        _local.conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return _local.conn


def _redis() -> redis.Redis:
    if getattr(_local, "redis", None) is None:
        _local.redis = redis.Redis.from_url(REDIS_URL)
    return _local.redis


def _pause(step_ms: int) -> None:
    if step_ms:
        time.sleep(step_ms / 1000)


@app.task(name="bare.plan", queue="coordinator")
def plan(run_id: str, step_ms: int) -> None:
    _pause(step_ms)
    header = [
        step.signature((run_id, agent, step_ms), queue=f"agent.{agent}") for agent in SPECIALISTS
    ]
    chord(header, app=app)(collect.signature((run_id, step_ms), queue="coordinator"))


@app.task(name="bare.step")
def step(run_id: str, agent: str, step_ms: int) -> str:
    _pause(step_ms)
    return f"{agent} on {run_id}"


@app.task(name="bare.collect")
def collect(outputs: Sequence[str], run_id: str, step_ms: int) -> None:
    _pause(step_ms)  # the synthesis
    _db().execute(
        "INSERT INTO bench_runs (id, outputs) VALUES (%s, %s)", (run_id, "\n".join(outputs))
    )
    critic.apply_async((run_id, step_ms), queue="agent.critic")


@app.task(name="bare.critic")
def critic(run_id: str, step_ms: int) -> None:
    _pause(step_ms)
    _redis().rpush(DONE, f"{run_id} {time.time()}")


def create_table(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_runs (id text PRIMARY KEY, outputs text)")
        conn.execute("TRUNCATE bench_runs")


def run(count: int, step_ms: int, timeout: float = 300) -> tuple[float, list[float]]:
    """Send `count` pipelines at once; answer the wall time and each one's latency in ms."""
    client = _redis()
    client.delete(DONE)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for _ in range(count):
        run_id = uuid.uuid4().hex
        sent[run_id] = time.time()
        plan.apply_async((run_id, step_ms), queue="coordinator")
    latencies = []
    deadline = time.monotonic() + timeout
    while len(latencies) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bare pipeline: {len(latencies)} of {count} done in {timeout} s")
        popped = client.blpop([DONE], timeout=1)
        if popped is None:
            continue
        run_id, at = popped[1].decode().split()
        latencies.append((float(at) - sent[run_id]) * 1000)
    return time.perf_counter() - started, latencies
