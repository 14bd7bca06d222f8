"""A specialist's step calling MCP tools for real, run by the StepRunner in the test's process:
the record on Postgres, the offline model through the gateway, what the tool modules share.

A module names its tenant (`TENANT`) and a Redis database of its own (`REDIS_DB`), and takes
the fixtures by importing them, each under its own name as an alias (`uow as uow`): ruff then
counts the import as meant, not as a name the module's tests redefine when they take it.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa

from meshcore.adapters.breaker import BreakerBoard, BreakerPolicy
from meshcore.adapters.litellm_models import ModelGateway, configure, is_breaker_failure
from meshcore.adapters.mcp_tools import McpTools
from meshcore.adapters.redis_activity import RedisAgentActivity
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.agent_types import AgentTypeDef, ToolServer
from meshcore.domain.clock import SystemClock
from meshcore.domain.network import Network, NetworkConfig
from meshcore.domain.plan import Plan, PlannedSubtask
from meshcore.domain.task import Priority, StepRecord, Task
from meshcore.services.agent_steps import StepRunner
from meshcore.settings import OFFLINE_MODEL, Settings
from tests.conftest import DATA_KEYS

SUBTASK = "Find the facts about Orbit"


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[sa.Engine]:
    """The record; after the module, the networks and agent types of its TENANT are gone."""
    engine = create_engine(database_url)
    yield engine
    tenant = {"t": request.module.TENANT}
    with tenancy.across_tenants(engine).begin() as db:
        db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), tenant)
        db.execute(sa.text("DELETE FROM agent_types WHERE tenant_id = :t"), tenant)
    engine.dispose()


@pytest.fixture(scope="module")
def uow(engine: sa.Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS))


@pytest.fixture(scope="module")
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[redis.Redis]:
    """The module's Redis database (its REDIS_DB), emptied before and after the module."""
    connection = redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{request.module.REDIS_DB}")
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def step_runner(
    tenant: str, uow: SqlUnitOfWorkFactory, client: redis.Redis, tools: McpTools, **options: float
) -> StepRunner:
    """A worker's step runner for `tenant`, on the offline model, calling tools by `tools`;
    `options` go to the StepRunner as they are (lease_seconds, say)."""
    settings = Settings(model_chain=(OFFLINE_MODEL,), allow_offline_model=True)
    configure(settings)
    policy = BreakerPolicy(
        failure_threshold=5, window_seconds=60, recovery_seconds=30, probe_lease_seconds=60
    )
    return StepRunner(
        tenant_id=tenant,
        uow=uow,
        memory=RedisMemoryStore(client, Sealer.from_text(DATA_KEYS)),
        activity=RedisAgentActivity(client),
        models=ModelGateway(settings, BreakerBoard(client, policy, is_breaker_failure)),
        clock=SystemClock(),
        tools=tools,
        **options,
    )


def planned(uow: SqlUnitOfWorkFactory, tenant: str, server: ToolServer) -> Task:
    """A task of a new network of `tenant` whose one subtask, "facts", is for a new type
    calling `server`."""
    now = SystemClock().now()
    name = f"t{uuid4().hex[:8]}"
    definition = AgentTypeDef(
        name=name,
        description="Finds facts with its tools.",
        role="You are the research scout of a marketing team.",
        tools=(server,),
        created_at=now,
    )
    network = Network.create(
        tenant_id=tenant, name="tools", description="",
        config=NetworkConfig(model_chain=(OFFLINE_MODEL,)), now=now,
    )  # fmt: skip
    network.new_agent(name="scout", type=name, now=now)
    task = Task.create(
        tenant_id=tenant, network_id=network.id, description="Launch Orbit", context={},
        priority=Priority.NORMAL, timeout_seconds=300, now=now,
    )  # fmt: skip
    subtask = PlannedSubtask("facts", name, SUBTASK, queue="agent.general")
    with uow(tenant) as work:
        # Stored sealed and read back by the step: a stdio server's command goes through the
        # record.
        work.agent_types.add(definition)
        work.networks.add(network)
        work.tasks.add(task)
        work.tasks.add_plan(task.id, 1, Plan(((subtask,),)), now=now)
        work.commit()
    return task


def run(runner: StepRunner, task: Task) -> StepRecord:
    """Run the task's "facts" step of iteration 1, as a worker would."""
    step = runner.run_subtask(task.id, 1, "facts")
    assert step is not None
    return step
