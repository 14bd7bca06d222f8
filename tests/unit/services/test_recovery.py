"""The sweeper re-drives what a lost message left undone, from what the record holds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meshcore.adapters.redis_epoch import RedisEpoch
from meshcore.domain.errors import Unavailable
from meshcore.domain.idempotency import IdempotencyKey
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.services.recovery import Sweeper
from tests.fakes import Call, FakeDispatcher, FakeMesh

STALL = 30.0
TWO_WAVES: list[dict[str, object]] = [
    {"key": "facts", "agent": "research", "description": "Find the facts"},
    {"key": "copy", "agent": "content", "description": "Write it", "depends_on": ["facts"]},
]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def sweeper(mesh: FakeMesh) -> Sweeper:
    return Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=STALL,
    )


def submit(mesh: FakeMesh, **kwargs: object) -> Task:
    network = mesh.create_network(NetworkConfig(quality_threshold=0.0))
    return mesh.tasks.submit(
        network.id, description="Launch email", context={}, priority=Priority.NORMAL, **kwargs
    )


def take_wave(mesh: FakeMesh) -> Call:
    """Take the pending wave off the broker, as if its chord were lost with it."""
    wave = next(c for c in mesh.dispatcher.pending if c.name == "run_wave")
    mesh.dispatcher.pending.remove(wave)
    return wave


def read(mesh: FakeMesh, task: Task) -> Task:
    return mesh.tasks.get(task.network_id, task.id)


def test_a_task_whose_coordinate_was_lost_is_started_by_the_sweep(mesh: FakeMesh) -> None:
    task = submit(mesh)
    assert mesh.dispatcher.lose("coordinate") == 1
    mesh.clock.advance(STALL + 1)

    assert sweeper(mesh).sweep() == {"coordinate": 1}
    mesh.drain()

    done = read(mesh, task)
    assert done.status is TaskStatus.COMPLETED
    assert [e.detail["action"] for e in done.history if e.kind == "recovery"] == ["coordinate"]


def test_a_wave_whose_fan_in_was_lost_is_collected_without_rerunning_its_steps(
    mesh: FakeMesh,
) -> None:
    task = submit(mesh, plan=TWO_WAVES)
    mesh.dispatcher.deliver_next(mesh.coordination)  # coordinate: plans, sends wave 0
    wave = take_wave(mesh)  # the chord's steps run, its callback is lost
    for subtask in wave.subtasks:
        mesh.coordination.run_step(task.id, 1, subtask.key)
    calls_before = len(mesh.models.calls)
    mesh.clock.advance(STALL + 1)

    assert sweeper(mesh).sweep() == {"collect": 1}
    mesh.drain()

    assert read(mesh, task).status is TaskStatus.COMPLETED
    rerun = [c for c in mesh.models.calls[calls_before:] if "research specialist" in c.system]
    assert rerun == []


def test_only_the_missing_steps_of_a_wave_are_sent_again(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.dispatcher.deliver_next(mesh.coordination)
    wave = take_wave(mesh)  # five steps; only the first two ever ran
    ran = [s.key for s in wave.subtasks[:2]]
    for key in ran:
        mesh.coordination.run_step(task.id, 1, key)
    mesh.clock.advance(STALL + 1)

    assert sweeper(mesh).sweep() == {"wave": 1}
    resent = take_wave(mesh)
    mesh.dispatcher.pending.appendleft(resent)
    assert sorted(s.key for s in resent.subtasks) == sorted(s.key for s in wave.subtasks[2:])
    mesh.drain()
    done = read(mesh, task)
    assert done.status is TaskStatus.COMPLETED
    steps = [e for e in done.history if e.kind == "step"]
    assert len([e for e in steps if e.detail["subtask"] in ran]) == 2


def test_a_held_task_and_a_task_still_moving_are_left_alone(mesh: FakeMesh) -> None:
    held = submit(mesh, auto_process=False)
    moving = submit(mesh)
    mesh.clock.advance(STALL - 1)

    assert sweeper(mesh).sweep() == {}
    mesh.clock.advance(2)
    assert sweeper(mesh).sweep() == {"coordinate": 1}  # only the one whose message was sent
    assert read(mesh, held).status is TaskStatus.QUEUED
    assert {c.ref.task_id for c in mesh.dispatcher.calls if c.name == "coordinate"} == {moving.id}


def test_two_sweeps_do_not_redrive_a_task_twice(mesh: FakeMesh) -> None:
    submit(mesh)
    mesh.dispatcher.lose("coordinate")
    mesh.clock.advance(STALL + 1)

    first, second = sweeper(mesh).sweep(), sweeper(mesh).sweep()

    assert (first, second) == ({"coordinate": 1}, {})


def test_a_stalled_task_past_its_deadline_is_timed_out_by_the_sweep(mesh: FakeMesh) -> None:
    task = submit(mesh)
    mesh.dispatcher.lose("coordinate")
    mesh.clock.advance(NetworkConfig().timeout_seconds + 1)

    assert sweeper(mesh).sweep() == {"timed out": 1}
    assert read(mesh, task).status is TaskStatus.TIMED_OUT


def test_the_memory_view_is_rebuilt_from_the_record_after_redis_lost_it(mesh: FakeMesh) -> None:
    from meshcore.domain.memory import MemoryQuery, MemoryType

    network = mesh.create_network()
    item = mesh.memory.add(network.id, type=MemoryType.FACT, content="Ships Monday", confidence=0.9)
    mesh.redis.flushall()  # a Redis restarted with no persistence

    found = mesh.memory.query(network.id, MemoryQuery())

    assert [m.id for m in found] == [item.id]
    assert mesh.store.is_built(mesh.tenant_id, network.id)


def test_reads_fall_back_to_the_record_while_redis_is_down(mesh: FakeMesh) -> None:
    from meshcore.domain.memory import MemoryQuery, MemoryType

    network = mesh.create_network()
    item = mesh.memory.add(network.id, type=MemoryType.FACT, content="Ships Monday", confidence=0.9)
    mesh.redis.connected = False  # fakeredis then raises ConnectionError

    found = mesh.memory.query(network.id, MemoryQuery())

    assert [m.id for m in found] == [item.id]


def epoch_sweeper(mesh: FakeMesh, epoch: RedisEpoch) -> Sweeper:
    return Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=STALL,
        epoch=epoch,
    )


def test_a_redis_that_lost_its_data_has_everything_in_flight_redriven_at_once(
    mesh: FakeMesh,
) -> None:
    epoch = RedisEpoch(mesh.redis)
    epoch.start(mesh.clock.now())
    running = submit(mesh, plan=TWO_WAVES)
    mesh.dispatcher.deliver_next(mesh.coordination)  # coordinate: plans, sends wave 0
    take_wave(mesh)
    queued = submit(mesh)
    assert mesh.dispatcher.lose("coordinate") == 1
    mesh.clock.advance(1)
    assert epoch_sweeper(mesh, epoch).sweep() == {}  # nothing looks stalled yet

    mesh.redis.flushall()  # the queues and the chord counter went with it
    mesh.clock.advance(1)  # far short of the stall timeout

    assert epoch_sweeper(mesh, epoch).sweep() == {"coordinate": 1, "wave": 1}
    mesh.drain()
    assert read(mesh, queued).status is TaskStatus.COMPLETED
    assert read(mesh, running).status is TaskStatus.COMPLETED


def test_a_loss_two_processes_notice_is_redriven_once(mesh: FakeMesh) -> None:
    first, second = RedisEpoch(mesh.redis), RedisEpoch(mesh.redis)  # one per process
    first.start(mesh.clock.now())
    submit(mesh)
    mesh.dispatcher.lose("coordinate")
    assert epoch_sweeper(mesh, first).sweep() == epoch_sweeper(mesh, second).sweep() == {}
    mesh.redis.flushall()
    mesh.clock.advance(1)

    assert epoch_sweeper(mesh, first).sweep() == {"coordinate": 1}
    assert epoch_sweeper(mesh, second).sweep() == {}  # it sees the new epoch, already handled


def test_a_sweep_while_redis_is_down_still_redrives_stalled_tasks(mesh: FakeMesh) -> None:
    epoch = RedisEpoch(mesh.redis)
    epoch.start(mesh.clock.now())
    submit(mesh)
    mesh.dispatcher.lose("coordinate")
    mesh.clock.advance(STALL + 1)
    mesh.redis.connected = False

    assert epoch_sweeper(mesh, epoch).sweep() == {"coordinate": 1}


def test_a_task_whose_enqueue_failed_is_started_by_the_first_sweep_not_after_the_stall() -> None:
    is_broker_down = True

    def broker(call: Call) -> None:
        if is_broker_down:
            raise Unavailable("the broker is unavailable: ConnectionError")

    mesh = FakeMesh.build("acme", dispatcher=FakeDispatcher(on_call=broker))
    task = submit(mesh)  # accepted: recorded, though its message never left
    is_broker_down = False  # back with its data, so the epoch says nothing
    mesh.clock.advance(1)

    assert sweeper(mesh).sweep() == {"coordinate": 1}
    mesh.drain()

    assert read(mesh, task).status is TaskStatus.COMPLETED


def test_a_task_that_cannot_be_redriven_does_not_hold_back_the_others(mesh: FakeMesh) -> None:
    # A task whose content no data key of this fleet opens (left by another fleet, say).
    unreadable, task = submit(mesh), submit(mesh)
    assert mesh.dispatcher.lose("coordinate") == 2
    mesh.clock.advance(STALL + 1)
    real = lambda t: mesh.for_tenant(t).coordination  # noqa: E731

    class Unreadable:
        def __init__(self, coordination: object) -> None:
            self._coordination = coordination

        def redrive(self, task_id: object, before: object) -> str | None:
            if task_id == unreadable.id:
                raise ValueError("sealed under a key MESH_DATA_KEYS does not hold")
            return self._coordination.redrive(task_id, before)  # type: ignore[attr-defined]

    sweep = Sweeper(
        finder=mesh.uow,
        coordination=lambda t: Unreadable(real(t)),  # type: ignore[arg-type,return-value]
        clock=mesh.clock,
        stall_seconds=STALL,
    )

    assert sweep.sweep() == {"failed": 1, "coordinate": 1}
    mesh.drain()
    assert read(mesh, task).status is TaskStatus.COMPLETED


def test_a_sweep_forgets_idempotency_keys_past_their_lifetime_and_keeps_the_rest(
    mesh: FakeMesh,
) -> None:
    network = mesh.create_network()
    old = IdempotencyKey("old-key", "fingerprint")
    mesh.tasks.submit(network.id, description="Old", context={}, priority=Priority.NORMAL,
                      auto_process=False, idempotency=old)  # fmt: skip
    mesh.clock.advance(23 * 3600)
    fresh = IdempotencyKey("fresh-key", "fingerprint")
    mesh.tasks.submit(network.id, description="Fresh", context={}, priority=Priority.NORMAL,
                      auto_process=False, idempotency=fresh)  # fmt: skip
    mesh.clock.advance(2 * 3600)  # the first key is 25 h old, the second 2 h
    sweep = Sweeper(
        finder=mesh.uow,
        coordination=lambda t: mesh.for_tenant(t).coordination,
        clock=mesh.clock,
        stall_seconds=STALL,
        idempotency_lifetime=timedelta(hours=24),
    )

    actions = sweep.sweep()

    assert actions["idempotency_keys_forgotten"] == 1
    assert {key for _, key in mesh.database.committed.idempotency} == {"fresh-key"}
