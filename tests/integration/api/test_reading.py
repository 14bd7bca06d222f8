"""What a user reads of a task: waves count from 1 like iterations, latencies are rounded,
and the docs are where a newcomer looks for them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.network import AgentType
from meshcore.domain.plan import PlannedSubtask, validate_plan
from meshcore.domain.task import StepRecord, StepStatus
from meshcore.domain.usage import Usage
from tests.conftest import DATA_KEYS
from tests.integration.api.client import API, NETWORKS, ApiClient

pytestmark = pytest.mark.integration

UNROUNDED_MS = 1.3984569999934138


def run_two_waves(engine: sa.Engine, tenant: str, task: dict[str, Any]) -> None:
    """Plan facts -> copy, record both steps and a recovery, as the workers would."""
    uow, task_id = SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS)), UUID(task["id"])
    now = datetime.now(UTC)
    planned = [
        PlannedSubtask("facts", AgentType.RESEARCH, "Find the facts"),
        PlannedSubtask("copy", AgentType.CONTENT, "Write it", depends_on=("facts",)),
    ]
    with uow(tenant) as work:
        work.tasks.add_plan(task_id, 1, validate_plan(planned, AgentType), now=datetime.now(UTC))
        work.commit()
    with engine.begin() as db:
        db.execute(
            sa.text("UPDATE tasks SET iteration = 1, status = 'running' WHERE id = :id"),
            {"id": task["id"]},
        )
    for key, agent in (("facts", AgentType.RESEARCH), ("copy", AgentType.CONTENT)):
        step = StepRecord(
            task_id, 1, key, agent, f"agent.{agent}", StepStatus.COMPLETED, f"{key} done",
            recorded_at=now, model="mesh-offline/offline", usage=Usage(10, 5, 0.0),
            latency_ms=UNROUNDED_MS, worker="agents1@host",
        )  # fmt: skip
        with uow(tenant) as work:
            work.steps.record(step)
            work.tasks.add_step(step, now=now)
            work.commit()
        with uow(tenant, autocommit=True) as work:
            work.agents.record_call(
                UUID(task["network_id"]), agent, latency_ms=UNROUNDED_MS, usage=step.usage,
                is_failure=False,
            )  # fmt: skip
    with uow(tenant) as work:
        stored = work.tasks.get(task_id)
        stored.advance_wave(now=now)
        stored.record_recovery(now=now, action="wave")  # the second wave, re-driven
        work.tasks.save(stored)
        work.commit()


@pytest.fixture
def read_task(
    client: ApiClient, queued_task: dict[str, Any], engine: sa.Engine, tenant: str
) -> dict[str, Any]:
    run_two_waves(engine, tenant, queued_task)
    url = f"{NETWORKS}/{queued_task['network_id']}/tasks/{queued_task['id']}"
    response = client.get(url)
    assert response.status_code == 200
    return response.get_json()


def test_waves_count_from_one_like_iterations(read_task: dict[str, Any]) -> None:
    by_key = {s["key"]: s for s in read_task["subtasks"]}

    assert (by_key["facts"]["iteration"], by_key["facts"]["wave"]) == (1, 1)
    assert (by_key["copy"]["iteration"], by_key["copy"]["wave"]) == (1, 2)
    recovery = next(h for h in read_task["history"] if h["kind"] == "recovery")
    assert (recovery["detail"]["iteration"], recovery["detail"]["wave"]) == (1, 2)


def test_latencies_are_rounded_to_a_tenth_of_a_millisecond(
    client: ApiClient, read_task: dict[str, Any]
) -> None:
    steps = [s["step"] for s in read_task["subtasks"]]
    history = [h["detail"] for h in read_task["history"] if h["kind"] == "step"]

    assert [s["latency_ms"] for s in steps] == [1.4, 1.4]
    assert [h["latency_ms"] for h in history] == [1.4, 1.4]
    agents = client.get(f"{NETWORKS}/{read_task['network_id']}/agents").get_json()
    ran = [a for a in agents if a["type"] in ("research", "content")]
    assert [a["metrics"]["mean_latency_ms"] for a in ran] == [1.4, 1.4]


def test_the_task_schema_says_subtasks_cover_every_iteration(client: ApiClient) -> None:
    document = client.get(f"{API}/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    description = schemas["Task"]["properties"]["subtasks"]["description"]
    assert "every iteration" in description and "`iteration`" in description
    assert "from 1" in schemas["Subtask"]["properties"]["wave"]["description"]


@pytest.mark.parametrize(("path", "target"), [("/", "/console"), (f"{API}/docs/", f"{API}/docs")])
def test_the_root_and_near_docs_urls_redirect_to_the_console_and_the_docs(
    client: ApiClient, path: str, target: str
) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"] == target
    assert client.get(path, follow_redirects=True).mimetype == "text/html"
