"""Recording a step on the real record: first write wins, sums add up, the right agent counts.

Each test runs on real Postgres and on a SQLite file, the embedded default's record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest
import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.engine import create_engine
from meshcore.adapters.sql.migrate import upgrade
from meshcore.adapters.sql.tables import agents, steps
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.errors import NotFound
from meshcore.domain.network import AgentType, Network, NetworkConfig
from meshcore.domain.task import Priority, StepRecord, StepStatus, Task, TaskStatus, Usage

pytestmark = pytest.mark.integration

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
TENANT = f"record-test-{uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Engine]:
    if request.param == "postgres":
        url = request.getfixturevalue("database_url")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('record') / 'mesh.db'}"
        upgrade(url)
    engine = create_engine(url)
    yield engine
    with engine.begin() as db:
        db.execute(sa.text("DELETE FROM networks WHERE tenant_id = :t"), {"t": TENANT})
    engine.dispose()


@pytest.fixture(scope="module")
def uow(engine: sa.Engine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, Sealer([Sealer.generate_key()]))


@pytest.fixture
def world(uow: SqlUnitOfWorkFactory) -> tuple[Network, Task]:
    network = Network.create(
        tenant_id=TENANT, name="n", description="", config=NetworkConfig(), now=NOW
    )
    for name in ("first writer", "second writer"):
        network.new_agent(name=name, type=AgentType.CONTENT, now=NOW)
    task = Task.create(
        tenant_id=TENANT,
        network_id=network.id,
        description="Write the launch email",
        context={},
        priority=Priority.NORMAL,
        timeout_seconds=300,
        now=NOW,
    )
    with uow(TENANT) as work:
        work.networks.add(network)
        work.tasks.add(task)
        work.commit()
    return network, task


def step(task: Task, output: str, usage: Usage) -> StepRecord:
    return StepRecord(
        task.id, 1, "copy", AgentType.CONTENT, "agent.content", StepStatus.COMPLETED, output,
        recorded_at=NOW, model="m", usage=usage, latency_ms=12.0,
    )  # fmt: skip


def test_the_first_recording_of_a_key_wins(
    uow: SqlUnitOfWorkFactory, world: tuple[Network, Task]
) -> None:
    _, task = world
    with uow(TENANT) as work:
        first = work.steps.record(step(task, "first", Usage(10, 5, 0.01)))
        second = work.steps.record(step(task, "second", Usage(1, 1, 0.0)))
        work.commit()

    assert (first[0].output, first[1]) == ("first", True)
    assert (second[0].output, second[1]) == ("first", False)
    assert first[0].usage == Usage(10, 5, 0.01)


def test_steps_add_their_usage_and_history_to_the_task(
    uow: SqlUnitOfWorkFactory, world: tuple[Network, Task]
) -> None:
    _, task = world
    with uow(TENANT) as work:
        work.tasks.add_step(step(task, "a", Usage(10, 5, 0.01)), now=NOW)
        work.tasks.add_step(step(task, "b", Usage(3, 2, 0.02)), now=NOW)
        work.commit()
    with uow(TENANT) as work:
        stored = work.tasks.get(task.id)
        history = work.tasks.history(task.id)

    assert stored.usage == Usage(13, 7, pytest.approx(0.03))
    steps = [e for e in history if e.kind == "step"]
    assert [(e.status, e.agent, e.detail["subtask"]) for e in steps] == [
        (TaskStatus.QUEUED, "content", "copy"),
    ] * 2


def test_a_call_counts_against_the_agent_that_takes_the_steps_of_its_type(
    uow: SqlUnitOfWorkFactory, world: tuple[Network, Task]
) -> None:
    network, _ = world
    with uow(TENANT) as work:
        work.agents.record_call(
            network.id, AgentType.CONTENT, latency_ms=12.0, usage=Usage(10, 5, 0.01),
            is_failure=False,
        )  # fmt: skip
        work.commit()
    with uow(TENANT) as work:
        agents = {a.name: a.metrics for a in work.agents.list(network.id)}

    assert (agents["first writer"].calls, agents["first writer"].input_tokens) == (1, 10)
    assert agents["second writer"].calls == 0


def test_a_call_counted_in_an_autocommit_unit_of_work_is_kept(
    uow: SqlUnitOfWorkFactory, engine: sa.Engine, world: tuple[Network, Task]
) -> None:
    # As the step runner counts a call: in a statement that commits as it runs, no commit().
    network, _ = world
    for latency_ms in (12.0, 30.0):
        with uow(TENANT, autocommit=True) as work:
            work.agents.record_call(
                network.id, AgentType.CONTENT, latency_ms=latency_ms, usage=Usage(10, 5, 0.01),
                is_failure=False,
            )  # fmt: skip

    with uow(TENANT) as work:
        first = next(a for a in work.agents.list(network.id) if a.name == "first writer")
    assert (first.metrics.calls, first.metrics.latency_ms_total) == (2, 42.0)
    with engine.connect() as db:  # what a user reading the agents table sees
        calls = db.execute(sa.select(agents.c.calls).where(agents.c.id == first.id)).scalar_one()
    assert calls == 2


def test_a_step_of_a_task_deleted_under_it_is_not_found_and_records_nothing(
    uow: SqlUnitOfWorkFactory, engine: sa.Engine, world: tuple[Network, Task]
) -> None:
    # A network erased while its step ran: the step's write finds its task gone.
    network, task = world
    with uow(TENANT) as work:
        work.networks.delete(network.id)
        work.commit()

    with pytest.raises(NotFound), uow(TENANT) as work:
        work.steps.record(step(task, "late", Usage(1, 1, 0.0)))
        work.commit()

    with engine.connect() as db:
        left = db.execute(sa.select(sa.func.count()).where(steps.c.task_id == task.id))
        assert left.scalar() == 0
