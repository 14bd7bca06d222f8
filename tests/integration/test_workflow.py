"""A task through real Celery workers on the per-agent queues, real Redis and real Postgres."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from meshcore.adapters.sql.migrate import upgrade
from meshcore.domain.agent_types import own_queue
from meshcore.domain.network import AgentType, NetworkConfig
from meshcore.domain.task import PLAN_KEY, REVIEW_KEY, Priority, TaskStatus
from meshcore.domain.usage import Budget
from meshcore.services.networks import AgentSpec
from meshworkers.app import create_celery
from tests.drills.harness import PrivateRedis
from tests.integration.fleet import Fleet, WorkerSpec, fleet

pytestmark = pytest.mark.integration

REDIS_DB = "/10"
CONTENT_WORKER = "content@mesh-test"
OTHERS_WORKER = "others@mesh-test"


@pytest.fixture(scope="module")
def workers(database_url: str, redis_url: str) -> Iterator[Fleet]:
    # Content steps have a worker of their own, so the test can see where each step ran.
    others = [q for q in (own_queue(t) for t in AgentType) if q != "agent.content"]
    specs = [WorkerSpec(CONTENT_WORKER, ["agent.content"]), WorkerSpec(OTHERS_WORKER, others)]
    with fleet(database_url, redis_url.rsplit("/", 1)[0] + REDIS_DB, specs) as running:
        yield running


def network(workers: Fleet, **config: object) -> object:
    return workers.services.networks.create(
        name=f"it-{uuid4().hex[:8]}", description="", config=NetworkConfig(**config)
    )


def test_subtasks_run_on_the_queues_of_their_agent_types(workers: Fleet) -> None:
    net = network(workers, quality_threshold=0.0)
    task = workers.services.tasks.submit(
        net.id,
        description="Write the launch email for Mesh",
        context={},
        priority=Priority.HIGH,
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.COMPLETED
    specialists = [s for s in done.subtasks]
    assert {s.planned.agent_type for s in specialists} == {
        AgentType.CONTENT,
        AgentType.DESIGN,
        AgentType.ANALYTICS,
        AgentType.PERSONALIZATION,
        AgentType.RESEARCH,
    }
    for subtask in specialists:
        assert subtask.step.queue == own_queue(subtask.planned.agent_type)
        expected = (
            CONTENT_WORKER if subtask.planned.agent_type == AgentType.CONTENT else OTHERS_WORKER
        )
        assert subtask.step.worker == expected
    steps = [h for h in done.history if h.kind == "step"]
    review = next(h for h in steps if h.detail["subtask"] == REVIEW_KEY)
    assert review.queue == "agent.critic"
    plan = next(h for h in steps if h.detail["subtask"] == PLAN_KEY)
    assert plan.queue == "coordinator"
    assert done.result is not None
    assert "[offline model, not an AI]" in str(done.result.answer)


def test_a_dependent_subtask_sees_its_dependency_through_shared_memory(workers: Fleet) -> None:
    net = network(workers, quality_threshold=0.0)
    plan = [
        {"key": "facts", "agent": "research", "description": "Find the product's facts"},
        {
            "key": "copy",
            "agent": "content",
            "description": "Write the email",
            "depends_on": ["facts"],
        },
    ]
    task = workers.services.tasks.submit(
        net.id, description="Launch email", context={}, priority=Priority.NORMAL, plan=plan
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.COMPLETED
    by_key = {s.key: s for s in done.subtasks}
    assert by_key["facts"].wave == 0 and by_key["copy"].wave == 1
    from meshcore.domain.memory import MemoryQuery

    written = workers.services.memory.query(net.id, MemoryQuery(task_id=task.id, limit=100))
    facts_item = next(m for m in written if m.metadata["subtask"] == "facts")
    assert facts_item.content == by_key["facts"].step.output
    assert str(facts_item.id) in by_key["copy"].step.memory_read
    assert "Building on: " + facts_item.content.splitlines()[0][:40] in by_key["copy"].step.output


def test_a_low_critic_score_causes_a_revision_until_max_iterations(workers: Fleet) -> None:
    # The offline critic never gives 1.0, so every review asks for a revision.
    net = network(workers, quality_threshold=1.0, max_iterations=2)
    task = workers.services.tasks.submit(
        net.id, description="Write the launch email", context={}, priority=Priority.NORMAL
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.COMPLETED
    assert done.iteration == 2
    transitions = [h for h in done.history if h.kind == "transition"]
    revisions = [h for h in transitions if h.detail.get("reason") == "revision"]
    assert len(revisions) == 1
    assert transitions[-1].detail["reason"] == "iteration budget spent"
    assert done.result is not None and done.result.score is not None
    assert done.result.score < 1.0
    reviews = [h for h in done.history if h.kind == "step" and h.detail["subtask"] == REVIEW_KEY]
    assert [r.detail["iteration"] for r in reviews] == [1, 2]
    # The read shows both iterations' work, the first before the revision.
    iterations = [s.iteration for s in done.subtasks]
    assert iterations == sorted(iterations) and set(iterations) == {1, 2}
    assert all(s.status == "completed" for s in done.subtasks)


def test_a_good_enough_first_draft_completes_without_revision(workers: Fleet) -> None:
    net = network(workers, quality_threshold=0.5, max_iterations=3)
    task = workers.services.tasks.submit(
        net.id, description="Write a short teaser", context={}, priority=Priority.LOW
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.COMPLETED
    assert done.iteration == 1
    assert done.history[-1].detail["reason"] == "quality threshold met"


@pytest.fixture(scope="module")
def embedded_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The embedded default's record: a SQLite file, with a Redis of the test's own."""
    workdir = tmp_path_factory.mktemp("embedded")
    database_url = f"sqlite:///{workdir / 'mesh.db'}"
    upgrade(database_url)
    redis_server = PrivateRedis(workdir)
    redis_server.start()
    queues = [own_queue(t) for t in AgentType]
    try:
        with fleet(database_url, redis_server.url, [WorkerSpec("all@mesh-test", queues, 4)]) as f:
            yield f
    finally:
        redis_server.stop()


@pytest.mark.parametrize("record", ["postgres", "sqlite"])
def test_agent_metrics_count_the_steps_they_ran(
    request: pytest.FixtureRequest, record: str
) -> None:
    workers: Fleet = request.getfixturevalue(
        "workers" if record == "postgres" else "embedded_workers"
    )
    net = workers.services.networks.create(
        name=f"it-{uuid4().hex[:8]}",
        description="",
        config=NetworkConfig(quality_threshold=0.0),
        agents=[
            AgentSpec(AgentType.COORDINATOR),
            AgentSpec(AgentType.CONTENT),
            AgentSpec(AgentType.CRITIC),
        ],
    )
    task = workers.services.tasks.submit(
        net.id, description="One line of copy", context={}, priority=Priority.NORMAL
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.COMPLETED
    agents = {a.type: a for a in workers.services.networks.list_agents(net.id)}
    assert agents[AgentType.CONTENT].metrics.calls == 1
    assert agents[AgentType.COORDINATOR].metrics.calls == 2  # the plan and the synthesis
    assert agents[AgentType.CRITIC].metrics.calls == 1
    assert all(a.metrics.in_flight == 0 for a in agents.values())
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0


def test_a_budget_stops_a_task_keeping_its_work(workers: Fleet) -> None:
    # Enough for a first draft and its review, not for the revisions a 1.0 bar asks for.
    budget = Budget(tokens=4000)
    net = network(workers, quality_threshold=1.0, max_iterations=3, budget=budget)
    task = workers.services.tasks.submit(
        net.id, description="Write the launch email", context={}, priority=Priority.NORMAL
    )

    done = workers.wait(task)

    assert done.status is TaskStatus.FAILED
    assert "budget exceeded" in done.error
    assert done.usage.input_tokens + done.usage.output_tokens <= budget.tokens
    assert done.result is not None
    assert str(done.result.answer).startswith("[offline model, not an AI]")  # the work it has
    assert done.result.partial is True


def test_workers_send_task_events_only_once_flower_asks_for_them(workers: Fleet) -> None:
    app = create_celery(workers.settings)
    seen: list[str] = []

    def run_one() -> list[str]:
        seen.clear()
        with app.connection() as connection:
            receiver = app.events.Receiver(
                connection, handlers={"*": lambda event: seen.append(event["type"])}
            )
            listener = threading.Thread(target=receiver.capture, kwargs={"limit": None})
            listener.start()
            time.sleep(0.5)  # subscribed before the task starts
            net = network(workers, quality_threshold=0.0)
            task = workers.services.tasks.submit(
                net.id, description="One line of copy", context={}, priority=Priority.NORMAL
            )
            assert workers.wait(task).status is TaskStatus.COMPLETED
            time.sleep(0.5)  # the last events in flight
            receiver.should_stop = True  # it stops at its next wake-up (at most 1 s)
            listener.join(timeout=10)
        return [t for t in seen if t.startswith("task-")]

    assert run_one() == []
    app.control.enable_events()  # what Flower sends every 5 s while it runs
    try:
        assert "task-succeeded" in run_one()
    finally:
        app.control.disable_events()
