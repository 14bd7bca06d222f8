"""Reading a task when it changes: revisions, conditional reads, the event log, cancelling."""

from __future__ import annotations

import threading
import time
from uuid import UUID

import pytest

from meshcore.domain.errors import Conflict, MemoryViewUnavailable, NotFound, RecordUnavailable
from meshcore.domain.task import Priority, Task, TaskChange, TaskStatus
from meshcore.services.tasks import Unchanged
from tests.fakes import FakeMesh, FakeNetworkRepository, ModelCall


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def submit(mesh: FakeMesh, *, auto_process: bool = True) -> Task:
    return mesh.tasks.submit(
        mesh.create_network().id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        auto_process=auto_process,
    )


def test_every_event_is_numbered_from_one_and_the_revision_is_the_last_number(
    mesh: FakeMesh,
) -> None:
    task = submit(mesh)
    mesh.drain()

    done = mesh.tasks.get(task.network_id, task.id)

    assert done.status is TaskStatus.COMPLETED
    assert [e.seq for e in done.history] == list(range(1, len(done.history) + 1))
    assert done.revision == len(done.history)
    kinds = {e.type for e in done.history}
    assert {"task.status", "task.plan", "step.started", "step.finished"} <= kinds
    assert {"critic.verdict", "task.completed"} <= kinds


def test_a_client_with_the_current_revision_is_told_unchanged_without_reading_the_record(
    mesh: FakeMesh,
) -> None:
    task = submit(mesh, auto_process=False)
    known = mesh.tasks.get(task.network_id, task.id).revision
    reads_before = len(mesh.uow.made)

    found = mesh.tasks.read(task.network_id, task.id, known=known)

    assert found == Unchanged(known)
    assert len(mesh.uow.made) == reads_before


def test_a_client_with_an_older_revision_gets_the_task(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    mesh.tasks.process(task.network_id, task.id)

    found = mesh.tasks.read(task.network_id, task.id, known=1)

    assert isinstance(found, Task)
    assert found.revision == 2


def test_the_record_answers_when_redis_has_no_revision(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    mesh.redis.flushall()

    assert mesh.tasks.read(task.network_id, task.id, known=1) == Unchanged(1)
    # ... and Redis knows it again for the next reader.
    assert mesh.revisions.current("acme", task.network_id, task.id).revision == 1


def test_the_record_answers_when_redis_is_away(
    mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = submit(mesh, auto_process=False)

    def away(*args: object) -> None:
        raise MemoryViewUnavailable("Redis is away")

    monkeypatch.setattr(mesh.revisions, "current", away)

    assert mesh.tasks.read(task.network_id, task.id, known=1) == Unchanged(1)
    assert isinstance(mesh.tasks.read(task.network_id, task.id, known=0), Task)


def test_another_tenants_task_is_not_found_even_with_its_revision(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    other = mesh.for_tenant("globex")

    with pytest.raises(NotFound):
        other.tasks.read(task.network_id, task.id, known=1)


def test_a_wait_answers_when_the_task_changes(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    timer = threading.Timer(0.2, mesh.tasks.process, args=(task.network_id, task.id))
    started = time.monotonic()
    timer.start()

    found = mesh.tasks.read(task.network_id, task.id, known=1, wait=10)

    assert isinstance(found, Task) and found.revision == 2
    assert time.monotonic() - started < 5  # woken by the change, not by the 10 s bound
    timer.join()


def test_a_wait_that_sees_no_change_says_unchanged(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)

    assert mesh.tasks.read(task.network_id, task.id, known=1, wait=0.2) == Unchanged(1)


def test_a_wait_on_an_ended_task_answers_at_once(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    ended = mesh.tasks.cancel(task.network_id, task.id)
    started = time.monotonic()

    found = mesh.tasks.read(task.network_id, task.id, known=ended.revision, wait=30)

    assert isinstance(found, Task) and found.status is TaskStatus.CANCELLED
    assert time.monotonic() - started < 5


def test_the_summary_counts_the_steps_of_the_current_iteration(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.dispatcher.deliver_next(mesh.coordination)  # plan: the first wave is sent

    summary = mesh.tasks.read(task.network_id, task.id, summary=True)

    assert summary.status is TaskStatus.RUNNING
    assert summary.iteration == 1
    assert summary.steps_planned >= 1 and summary.steps_done == 0
    mesh.drain()
    done = mesh.tasks.summary(task.network_id, task.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.answer and done.score is not None


def test_events_after_a_number_start_with_the_next_and_end_with_the_result(
    mesh: FakeMesh,
) -> None:
    task = submit(mesh)
    mesh.drain()
    every = list(mesh.tasks.events(task.network_id, task.id))

    resumed = list(mesh.tasks.events(task.network_id, task.id, after=3))

    assert [e.seq for e in every] == list(range(1, len(every) + 1))
    assert [e.seq for e in resumed] == [e.seq for e in every[3:]]
    assert every[-1].type == "task.completed"
    assert every[-1].detail["result"]["answer"]


def test_events_of_an_ended_task_read_from_its_last_number_are_none(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    ended = mesh.tasks.cancel(task.network_id, task.id)

    assert list(mesh.tasks.events(task.network_id, task.id, after=ended.revision)) == []


def test_events_of_a_missing_task_are_refused_before_any_is_sent(mesh: FakeMesh) -> None:
    network = mesh.create_network()

    with pytest.raises(NotFound):
        mesh.tasks.events(network.id, UUID(int=7))


def test_a_quiet_stream_sends_a_heartbeat(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)
    stream = mesh.tasks.events(task.network_id, task.id, heartbeat=0.1)

    assert next(stream).type == "task.status"
    assert next(stream) is None  # nothing happened for the heartbeat interval


def test_cancelling_a_queued_task_ends_it_at_once(mesh: FakeMesh) -> None:
    task = submit(mesh)

    cancelled = mesh.tasks.cancel(task.network_id, task.id)

    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.history[-1].type == "task.cancelled"
    mesh.drain()  # the queued message finds the task ended and does nothing
    assert mesh.tasks.get(task.network_id, task.id).status is TaskStatus.CANCELLED
    assert mesh.models.calls == []


def test_no_model_call_begins_after_a_cancel_and_the_work_done_is_kept(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.dispatcher.deliver_next(mesh.coordination)  # plan, and the first wave is sent
    mesh.dispatcher.deliver_next(mesh.coordination)  # the first wave's steps run
    calls = len(mesh.models.calls)
    done = [s.key for s in mesh.tasks.get(task.network_id, task.id).subtasks if s.step]

    cancelled = mesh.tasks.cancel(task.network_id, task.id)
    mesh.drain()

    assert len(mesh.models.calls) == calls
    final = mesh.tasks.get(task.network_id, task.id)
    assert final.status is TaskStatus.CANCELLED
    assert final.revision == cancelled.revision  # nothing was added after the end
    assert final.result is not None and final.result.contributions is not None
    assert done and [c.subtask for c in final.result.contributions] == done


def test_a_step_that_finishes_after_the_cancel_is_discarded(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.dispatcher.deliver_next(mesh.coordination)

    def cancel_meanwhile(call: ModelCall) -> None:
        mesh.tasks.cancel(task.network_id, task.id)

    mesh.models._on_call = cancel_meanwhile
    mesh.dispatcher.deliver_next(mesh.coordination)  # the step's model answers after the cancel

    final = mesh.tasks.get(task.network_id, task.id)
    assert final.status is TaskStatus.CANCELLED
    assert final.history[-1].type == "task.cancelled"
    assert all(s.step is None for s in final.subtasks)


def test_an_ended_task_cannot_be_cancelled(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.drain()

    with pytest.raises(Conflict, match="only an unfinished task"):
        mesh.tasks.cancel(task.network_id, task.id)


def test_another_tenant_cannot_cancel_a_task(mesh: FakeMesh) -> None:
    task = submit(mesh, auto_process=False)

    with pytest.raises(NotFound):
        mesh.for_tenant("globex").tasks.cancel(task.network_id, task.id)
    assert mesh.tasks.get(task.network_id, task.id).status is TaskStatus.QUEUED


def test_an_announcement_that_comes_after_its_networks_delete_makes_no_key(
    mesh: FakeMesh,
) -> None:
    task = submit(mesh, auto_process=False)
    late = TaskChange("acme", task.network_id, task.id, 9, TaskStatus.RUNNING)

    mesh.networks.delete(task.network_id)
    mesh.revisions.publish([late])  # a worker that committed just before the delete

    assert mesh.revisions.current("acme", task.network_id, task.id) is None
    assert [k for k in mesh.redis.scan_iter(match="*") if str(task.network_id).encode() in k] == []


def test_a_network_whose_delete_failed_announces_again(
    mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = submit(mesh, auto_process=False)

    def down(*args: object) -> None:
        raise RecordUnavailable("the record is away")

    monkeypatch.setattr(FakeNetworkRepository, "delete", down)
    with pytest.raises(RecordUnavailable):
        mesh.networks.delete(task.network_id)
    mesh.tasks.process(task.network_id, task.id)

    assert mesh.revisions.current("acme", task.network_id, task.id).revision == 2
