"""Admission control: new work is refused while the fleet's backlog is past its bound, from a
depth read at most once per interval; a depth that cannot be read admits. The task service
asks before it stores anything, and still answers the retry of a task it accepted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from meshcore.domain.errors import Overloaded, Unavailable
from meshcore.domain.idempotency import IdempotencyKey
from meshcore.domain.network import Approval, NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.admission import CACHE_SECONDS, Admission
from tests.fakes import FakeBacklog, FakeMesh, FakeTimer

BOUND = 500


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


def admission(backlog: FakeBacklog, timer: FakeTimer, *, drain: float = 100.0) -> Admission:
    return Admission(backlog, max_backlog=BOUND, drain_per_second=drain, timer=timer)


def test_a_backlog_up_to_the_bound_admits(timer: FakeTimer) -> None:
    gate = admission(FakeBacklog(BOUND), timer)

    assert gate.refusal() is None
    gate.check()


def test_a_backlog_past_the_bound_is_refused_with_the_time_its_excess_takes_to_drain(
    timer: FakeTimer,
) -> None:
    gate = admission(FakeBacklog(BOUND + 250), timer, drain=100.0)

    refused = gate.refusal()

    assert isinstance(refused, Overloaded)
    assert refused.retry_after_seconds == 3  # 250 messages past the bound, at 100 a second
    assert (refused.backlog, refused.limit) == (750, BOUND)
    assert "750 messages wait" in str(refused) and "bound of 500" in str(refused)
    assert "retry after 3 s" in str(refused)
    with pytest.raises(Overloaded):
        gate.check()


@pytest.mark.parametrize(("waiting", "seconds"), [(BOUND + 1, 1), (BOUND + 1_000_000, 60)])
def test_retry_after_is_at_least_a_second_and_at_most_a_minute(
    timer: FakeTimer, waiting: int, seconds: int
) -> None:
    refused = admission(FakeBacklog(waiting), timer).refusal()

    assert refused is not None and refused.retry_after_seconds == seconds


def test_the_depth_is_read_once_per_interval(timer: FakeTimer) -> None:
    backlog = FakeBacklog(BOUND + 1)
    gate = admission(backlog, timer)

    assert gate.refusal() is not None
    backlog.waiting = 0
    timer.now += CACHE_SECONDS / 2
    assert gate.refusal() is not None  # the depth read before still holds
    assert backlog.reads == 1

    timer.now += CACHE_SECONDS
    assert gate.refusal() is None
    assert backlog.reads == 2


def test_a_backlog_that_cannot_be_read_admits_and_warns_once_per_interval(
    timer: FakeTimer,
) -> None:
    backlog = FakeBacklog(BOUND + 1)
    backlog.error = Unavailable("the queues' backlog cannot be read: ConnectionError")
    gate = admission(backlog, timer)

    with capture_logs() as logs:
        assert gate.refusal() is None
        assert gate.refusal() is None
        timer.now += CACHE_SECONDS
        assert gate.refusal() is None

    warnings = [e for e in logs if e["event"] == "admission.backlog_unread"]
    assert [w["log_level"] for w in warnings] == ["warning", "warning"]
    assert "ConnectionError" in warnings[0]["error"]
    assert backlog.reads == 2

    backlog.error = None
    timer.now += CACHE_SECONDS
    assert gate.refusal() is not None  # read again once Redis answers


class SlowBacklog(FakeBacklog):
    """A read that waits until the test lets it answer."""

    def __init__(self, waiting: int) -> None:
        super().__init__(waiting)
        self.entered, self.release = threading.Event(), threading.Event()

    def depth(self) -> int:
        self.entered.set()
        assert self.release.wait(5)
        return super().depth()


@pytest.fixture
def slow() -> Iterator[SlowBacklog]:
    backlog = SlowBacklog(BOUND + 1)
    yield backlog
    backlog.release.set()


def test_callers_during_a_read_are_answered_from_the_last_depth_without_waiting(
    timer: FakeTimer, slow: SlowBacklog
) -> None:
    slow.release.set()
    gate = admission(slow, timer)
    assert gate.refusal() is not None  # read: past the bound
    slow.release.clear()
    slow.waiting = 0
    timer.now += CACHE_SECONDS

    reader = threading.Thread(target=gate.refusal)
    reader.start()
    assert slow.entered.wait(5)
    during = gate.refusal()  # answered while the reader waits on the backlog
    slow.release.set()
    reader.join(5)

    assert during is not None
    assert slow.reads == 2  # the caller during the read did not read
    assert gate.refusal() is None  # the reader's depth holds now


def submit(mesh: FakeMesh, network_id: UUID, key: str | None = None) -> Task:
    return mesh.tasks.submit(
        network_id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        idempotency=IdempotencyKey(key, f"print-of-{key}") if key else None,
    )


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme", max_backlog=BOUND)


def overload(mesh: FakeMesh) -> None:
    """Past the bound, from the next read on."""
    mesh.backlog.waiting = BOUND + 1
    mesh.clock.advance(CACHE_SECONDS)


def relieve(mesh: FakeMesh) -> None:
    mesh.backlog.waiting = 0
    mesh.clock.advance(CACHE_SECONDS)


def test_a_submit_past_the_bound_is_refused_storing_and_sending_nothing(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    overload(mesh)
    before = mesh.database.committed.snapshot()

    with pytest.raises(Overloaded):
        submit(mesh, network.id)

    assert mesh.database.committed == before
    assert mesh.dispatcher.calls == []


def test_a_submit_is_taken_again_once_the_backlog_drains(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    overload(mesh)
    with pytest.raises(Overloaded):
        submit(mesh, network.id)

    relieve(mesh)
    task = submit(mesh, network.id)

    assert mesh.dispatcher.names() == ["coordinate"]
    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.QUEUED


def test_the_retry_of_an_accepted_submit_is_answered_with_its_task_past_the_bound(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    first = submit(mesh, network.id, key="launch-1")
    overload(mesh)

    retried = submit(mesh, network.id, key="launch-1")

    assert retried.id == first.id
    assert len(mesh.database.committed.tasks) == 1


def test_a_new_key_past_the_bound_is_refused_and_left_free_for_the_clients_retry(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    overload(mesh)

    with pytest.raises(Overloaded):
        submit(mesh, network.id, key="launch-2")
    assert mesh.database.committed.idempotency == {}

    relieve(mesh)
    task = submit(mesh, network.id, key="launch-2")
    assert mesh.database.committed.tasks.keys() == {task.id}


def test_processing_a_held_task_past_the_bound_is_refused_and_the_task_stays_held(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    held = mesh.tasks.submit(
        network.id, description="Write it", context={}, priority=Priority.NORMAL,
        auto_process=False,
    )  # fmt: skip
    overload(mesh)

    with pytest.raises(Overloaded):
        mesh.tasks.process(network.id, held.id)

    assert mesh.tasks.get(network.id, held.id).is_held
    assert mesh.dispatcher.calls == []
    relieve(mesh)
    assert not mesh.tasks.process(network.id, held.id).is_held


def test_the_bound_is_the_fleets_every_tenant_is_refused(mesh: FakeMesh) -> None:
    other = mesh.for_tenant("globex")
    network = other.create_network()
    mesh.backlog.waiting = 10_000  # past any bound: the tenants share one backlog

    with pytest.raises(Overloaded):
        submit(other, network.id)


def test_approving_a_plan_past_the_bound_is_refused_and_the_task_keeps_waiting(
    mesh: FakeMesh,
) -> None:
    approving = NetworkConfig(approval=Approval(plan=True, timeout_seconds=600))
    network = mesh.create_network(approving)
    task = mesh.tasks.submit(
        network.id, description="Write it", context={}, priority=Priority.NORMAL,
        plan=[{"key": "facts", "agent": "research", "description": "Find the facts"}],
    )  # fmt: skip
    mesh.drain()
    sent = len(mesh.dispatcher.calls)
    overload(mesh)

    with pytest.raises(Overloaded):
        mesh.tasks.approve(network.id, task.id)

    assert mesh.tasks.get(network.id, task.id).status is TaskStatus.AWAITING_APPROVAL
    assert len(mesh.dispatcher.calls) == sent
    relieve(mesh)
    assert mesh.tasks.approve(network.id, task.id).status is TaskStatus.RUNNING
