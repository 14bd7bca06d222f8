"""Fault drills: a batch of tasks through real workers while something breaks.

Every drill asserts what the durability rule promises: every accepted task completes, each
subtask result is recorded once, and no model call is made again for a step that had already
recorded its result. Each prints its counts for the record.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import redis

from meshapi.app import create_app
from meshcore.adapters.sql.migrate import upgrade
from meshcore.domain.task import Task, TaskStatus
from tests.drills.conftest import REPORT
from tests.drills.harness import AGENT_QUEUES, Drill, PrivatePostgres, Worker, audit, drill
from tests.e2e.server import AUTH
from tests.provider_server import provider_server

pytestmark = pytest.mark.drill

BATCH = 50
TIMEOUT = 240


def steps_recorded(tasks: list[Task]) -> int:
    return sum(1 for t in tasks for e in t.history if e.kind == "step")


def fleet(run: Drill, *, agents_pool: str = "threads") -> None:
    run.start(Worker("coordinator", ["coordinator"], concurrency=16, beat=True))
    concurrency = 2 if agents_pool == "prefork" else 32
    run.start(Worker("agents", AGENT_QUEUES, pool=agents_pool, concurrency=concurrency))
    run.wait_ready(["coordinator", "agents"])


def finish(run: Drill, tasks: list[Task], name: str) -> None:
    started = time.monotonic()
    done, _ = run.wait_all(tasks, TIMEOUT)
    result = audit(run, tasks, time.monotonic() - started)
    REPORT.append(result.line(name))
    stuck = {t.status.value for t in done if t.status is not TaskStatus.COMPLETED}
    assert result.completed == result.accepted == BATCH, f"not completed: {stuck}"
    assert result.duplicates == 0
    assert result.repeated_model_calls == 0


def test_a_specialist_worker_killed_mid_step_then_restarted(
    tmp_path: Path, database_url: str
) -> None:
    with drill(tmp_path, database_url) as (run, _redis):
        fleet(run)
        tasks = run.submit_batch(BATCH)
        run.wait_until(tasks, lambda ts: steps_recorded(ts) >= BATCH)  # mid-batch, mid-wave

        run.kill("agents")  # the whole process, threads pool and all
        time.sleep(1)
        run.start(run.workers["agents"])

        finish(run, tasks, "specialist worker (threads) SIGKILLed")


def test_a_specialist_pool_child_killed_mid_step(tmp_path: Path, database_url: str) -> None:
    with drill(tmp_path, database_url) as (run, _redis):
        fleet(run, agents_pool="prefork")
        tasks = run.submit_batch(BATCH)
        run.wait_until(tasks, lambda ts: steps_recorded(ts) >= BATCH)

        parent = run.workers["agents"].process
        children = subprocess.run(
            ["pgrep", "-P", str(parent.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children, "the prefork pool has no children"
        subprocess.run(["kill", "-9", children[0]], check=True)

        finish(run, tasks, "specialist pool child (prefork) SIGKILLed")


def test_the_coordinator_worker_killed_between_waves(tmp_path: Path, database_url: str) -> None:
    with drill(tmp_path, database_url) as (run, _redis):
        fleet(run)
        tasks = run.submit_batch(BATCH)
        run.wait_until(tasks, lambda ts: any(t.status is TaskStatus.RUNNING for t in ts))

        run.kill("coordinator")
        time.sleep(1)
        run.start(run.workers["coordinator"])

        finish(run, tasks, "coordinator worker SIGKILLed")


def test_redis_restarted_with_nothing_kept(tmp_path: Path, database_url: str) -> None:
    with drill(tmp_path, database_url) as (run, redis_server):
        fleet(run)
        tasks = run.submit_batch(BATCH)
        run.wait_until(tasks, lambda ts: steps_recorded(ts) >= BATCH)

        redis_server.stop()  # queues, unacked messages, chord counters, memory view: gone
        time.sleep(1)
        redis_server.start()

        finish(run, tasks, "Redis restarted empty")


def test_a_provider_outage_for_the_whole_batch(tmp_path: Path, database_url: str) -> None:
    with provider_server() as provider:
        provider.behave("gpt-4o", default="500")
        env = {
            "MESH_MODEL_CHAIN": json.dumps(
                ["openai/gpt-4o", "anthropic/claude-3-7-sonnet-20250219"]
            ),
            "MESH_PROVIDER_API_BASES": json.dumps(
                {"openai": provider.openai_base, "anthropic": provider.anthropic_base}
            ),
            "MESH_ALLOW_OFFLINE_MODEL": "false",
            "OPENAI_API_KEY": "sk-test",
            "ANTHROPIC_API_KEY": "sk-ant-test",
        }
        with drill(tmp_path, database_url, env) as (run, _redis):
            fleet(run)
            tasks = run.submit_batch(BATCH)
            finish(run, tasks, "first provider down")
        REPORT.append(
            f"drill first provider down: {provider.requests['gpt-4o']} requests to the dead "
            f"provider, {provider.requests['claude-3-7-sonnet-20250219']} to the fallback"
        )
        assert provider.requests["gpt-4o"] <= 20


def test_postgres_restarted_mid_batch(tmp_path: Path) -> None:
    postgres = PrivatePostgres()
    postgres.start()
    try:
        upgrade(postgres.url)
        with drill(tmp_path, postgres.url) as (run, _redis):
            fleet(run)
            tasks = run.submit_batch(BATCH)
            api = create_app(run.mesh.settings).test_client()
            api.environ_base["HTTP_AUTHORIZATION"] = AUTH["Authorization"]
            location = f"/api/mesh/networks/{tasks[0].network_id}/tasks/{tasks[0].id}"
            run.wait_until(tasks, lambda ts: steps_recorded(ts) >= BATCH)

            postgres.stop()
            while_down = [
                api.get(location),
                api.post(
                    f"/api/mesh/networks/{tasks[0].network_id}/tasks",
                    json={"description": "while the record is down"},
                ),
            ]
            time.sleep(2)
            postgres.start()

            finish(run, tasks, "Postgres restarted")
        for response in while_down:
            assert response.status_code == 503, response.get_json()
            assert response.headers["Retry-After"]
            assert response.get_json()["code"] == 503
    finally:
        postgres.remove()


def test_a_worker_told_to_stop_finishes_its_steps_first(tmp_path: Path, database_url: str) -> None:
    with drill(tmp_path, database_url, {"MESH_OFFLINE_LATENCY_MS": "1500"}) as (run, _redis):
        fleet(run)
        tasks = run.submit_batch(10)
        run.wait_until(tasks, lambda ts: all(t.status is TaskStatus.RUNNING for t in ts))
        time.sleep(0.5)  # the first wave's steps are mid-call

        took = run.terminate("agents")  # warm shutdown: running steps finish, the rest wait
        begun = (run.logs / "agents.1.log").read_text().count('"step.model_call"')
        finished = (run.logs / "agents.1.log").read_text().count('"step.recorded"')
        run.start(run.workers["agents"])
        done, _ = run.wait_all(tasks, TIMEOUT)
        result = audit(run, tasks, took)

    assert begun > 0 and finished == begun
    assert [t.status for t in done] == [TaskStatus.COMPLETED] * 10
    assert result.duplicates == result.repeated_model_calls == 0
    REPORT.append(
        f"drill SIGTERM: the agents worker finished its {begun} running steps and "
        f"stopped in {took:.1f} s; all 10 tasks completed after its restart"
    )


# With the defaults: the stall timeout and sweep interval a deployment runs with.
DEFAULT_RECOVERY = {"MESH_STALL_SECONDS": "90", "MESH_SWEEP_INTERVAL_SECONDS": "15"}
WIPE_BATCH = 200


def test_redis_wiped_a_quarter_into_a_batch_is_noticed_without_the_stall_timeout(
    tmp_path: Path, database_url: str
) -> None:
    with drill(tmp_path, database_url, DEFAULT_RECOVERY) as (run, redis_server):
        fleet(run)
        run.wait_all(run.submit_batch(1), TIMEOUT)  # warm: each process has loaded its models

        started = time.monotonic()
        calm = run.submit_batch(WIPE_BATCH)
        calm_done, _ = run.wait_all(calm, TIMEOUT)
        calm_seconds = time.monotonic() - started

        started = time.monotonic()
        wiped = run.submit_batch(WIPE_BATCH)
        run.wait_until(
            wiped,
            lambda ts: sum(t.status is TaskStatus.COMPLETED for t in ts) >= WIPE_BATCH // 4,
            timeout=TIMEOUT,
        )
        redis.Redis.from_url(redis_server.url).flushall()  # queues, unacked, chord counters
        run.wait_all(wiped, TIMEOUT)
        wiped_seconds = time.monotonic() - started
        result = audit(run, wiped, wiped_seconds)
        restarts = {name: w.starts - 1 for name, w in run.workers.items()}

    REPORT.append(
        f"drill Redis wiped a quarter into {WIPE_BATCH} tasks (defaults): the batch took "
        f"{wiped_seconds:.1f} s, against {calm_seconds:.1f} s with no fault "
        f"(+{wiped_seconds - calm_seconds:.1f} s); {result.line('wipe')}"
    )
    assert [t.status for t in calm_done] == [TaskStatus.COMPLETED] * WIPE_BATCH
    assert result.completed == result.accepted == WIPE_BATCH
    assert result.duplicates == result.repeated_model_calls == 0
    assert restarts == {"coordinator": 0, "agents": 0}
    assert wiped_seconds - calm_seconds <= 30
