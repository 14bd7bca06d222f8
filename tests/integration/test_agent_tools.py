"""A specialist calling MCP tools for real: the MCP test server in a subprocess, the record on
Postgres, the offline model through the gateway, one step run by the StepRunner.

Exactly once: the server counts the calls it was sent, and a redelivered step (its record
gone, its lease expired, as when its worker died before recording it) sends none again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
import redis
import sqlalchemy as sa
import structlog

from meshcore.adapters.mcp_tools import McpTools
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.tables import step_attempts, steps
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.agent_types import ToolServer
from meshcore.domain.clock import SystemClock
from meshcore.domain.task import StepStatus, Task
from meshcore.ports import ToolCallRecord, ToolCallStatus
from meshcore.services.agent_steps import StepRunner
from tests.integration.agent_tool_runs import SUBTASK, planned, run, step_runner
from tests.integration.agent_tool_runs import client as client
from tests.integration.agent_tool_runs import engine as engine
from tests.integration.agent_tool_runs import uow as uow
from tests.mcp_fixtures import McpTestServer, mcp_server

pytestmark = pytest.mark.integration

TENANT = f"tools-test-{uuid4().hex[:8]}"
REDIS_DB = 13
log = structlog.get_logger(__name__)


@pytest.fixture(scope="module")
def server() -> Iterator[McpTestServer]:
    with mcp_server() as running:
        yield running


@pytest.fixture(scope="module")
def runner(uow: SqlUnitOfWorkFactory, client: redis.Redis) -> StepRunner:
    # lease_seconds: a redelivery below waits this out, as a dead attempt's lease.
    return step_runner(TENANT, uow, client, McpTools(timeout=5), lease_seconds=0.2)


def redeliver(engine: sa.Engine, task_id: UUID) -> None:
    """Forget the recorded step, and let its lease run out: its worker died before it
    recorded the step, and the broker hands it to another."""
    with tenancy.across_tenants(engine).begin() as db:
        gone = db.execute(steps.delete().where(steps.c.task_id == task_id)).rowcount
    assert gone == 1
    time.sleep(0.3)
    assert attempts(engine, task_id) == 1


def attempts(engine: sa.Engine, task_id: UUID) -> int:
    with tenancy.across_tenants(engine).connect() as db:
        return db.execute(
            sa.select(step_attempts.c.attempts).where(step_attempts.c.task_id == task_id)
        ).scalar_one()


def recorded(uow: SqlUnitOfWorkFactory, task: Task) -> list[ToolCallRecord]:
    with uow(TENANT) as work:
        return work.tool_calls.for_step(task.id, 1, "facts")


def outcomes(uow: SqlUnitOfWorkFactory, task: Task) -> list[str]:
    with uow(TENANT) as work:
        history = work.tasks.history(task.id)
    return [str(e.detail["outcome"]) for e in history if e.kind == "tool_call"]


def test_a_step_calls_the_tool_once_and_a_redelivery_calls_it_no_more(
    server: McpTestServer, runner: StepRunner, uow: SqlUnitOfWorkFactory, engine: sa.Engine
) -> None:
    server.reset()
    task = planned(uow, TENANT, ToolServer("kb", server.url, ("lookup",)))

    step = run(runner, task)

    said = f"Tool kb__lookup said: fact about {SUBTASK}: 42 sources agree"
    assert step.status is StepStatus.COMPLETED, step.error
    assert said in step.output
    assert server.calls()["calls"] == [{"tool": "lookup", "arguments": {"query": SUBTASK}}]
    [call] = recorded(uow, task)
    assert call.status is ToolCallStatus.DONE and call.finished_at is not None
    assert outcomes(uow, task) == ["ok"]
    # The measure asked for: a step with one tool call on loopback, the model offline.
    log.info("tool_step.latency", step_ms=round(step.latency_ms), tool_ms=round(call.latency_ms))
    print(f"\ntool step on loopback: {step.latency_ms:.0f} ms, its call {call.latency_ms:.0f} ms")

    redeliver(engine, task.id)
    again = run(runner, task)

    assert again.status is StepStatus.COMPLETED
    assert attempts(engine, task.id) == 2  # it did run again, calling the model anew
    assert said in again.output
    assert server.count("lookup") == 1
    assert outcomes(uow, task) == ["ok", "replayed"]
    assert len(recorded(uow, task)) == 1


def test_a_call_left_in_doubt_of_a_tool_that_is_not_idempotent_fails_the_step(
    server: McpTestServer, runner: StepRunner, uow: SqlUnitOfWorkFactory
) -> None:
    server.reset()
    task = planned(uow, TENANT, ToolServer("mail", server.url, ("send_email",)))
    planted = ToolCallRecord(
        task_id=task.id, iteration=1, key="facts", number=1, server="mail", tool="send_email",
        arguments_hash="planted", arguments={"to": SUBTASK, "subject": SUBTASK},
        status=ToolCallStatus.STARTED, started_at=SystemClock().now() - timedelta(seconds=5),
    )  # fmt: skip
    with uow(TENANT) as work:
        work.tool_calls.start(planted)
        work.commit()

    step = run(runner, task)

    assert step.status is StepStatus.FAILED
    assert step.error is not None and "the call to send_email may have run" in step.error
    assert "send_email is not idempotent, so Mesh will not repeat it" in step.error
    assert server.count("send_email") == 0
    assert outcomes(uow, task) == ["in_doubt"]
    [call] = recorded(uow, task)
    assert call.status is ToolCallStatus.STARTED


def test_an_idempotent_call_left_in_doubt_is_made_again_once(
    server: McpTestServer, runner: StepRunner, uow: SqlUnitOfWorkFactory
) -> None:
    server.reset()
    task = planned(uow, TENANT, ToolServer("kb", server.url, ("lookup",)))
    planted = ToolCallRecord(
        task_id=task.id, iteration=1, key="facts", number=1, server="kb", tool="lookup",
        arguments_hash="planted", arguments={"query": SUBTASK},
        status=ToolCallStatus.STARTED, started_at=SystemClock().now() - timedelta(seconds=5),
    )  # fmt: skip
    with uow(TENANT) as work:
        work.tool_calls.start(planted)
        work.commit()

    step = run(runner, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert server.count("lookup") == 1
    [call] = recorded(uow, task)
    assert call.status is ToolCallStatus.DONE
    took = f"{step.latency_ms:.0f} ms, its call {call.latency_ms:.0f} ms"
    print(f"\ntool step on loopback, warm: {took}")


def test_a_servers_credentials_go_with_its_requests_and_stay_sealed_in_the_record(
    server: McpTestServer, runner: StepRunner, uow: SqlUnitOfWorkFactory, engine: sa.Engine
) -> None:
    server.reset()
    secret = f"Bearer canary-{uuid4().hex}"
    task = planned(
        uow,
        TENANT,
        ToolServer("kb", server.url, ("lookup",), headers=(("Authorization", secret),)),
    )

    step = run(runner, task)

    assert step.status is StepStatus.COMPLETED, step.error
    assert server.calls()["authorizations"].get(secret, 0) >= 2  # the listing and the call
    with tenancy.across_tenants(engine).connect() as db:
        stored = db.execute(
            sa.text("SELECT definition::text FROM agent_types WHERE tenant_id = :t"),
            {"t": TENANT},
        ).scalars()
        assert all(secret.split()[1] not in row for row in stored)
