"""RatingService on fakes: a client rates a finished task, the rating is a feedback item in
memory, and the items the task's steps read learn from it, once per change of rating."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from meshcore.domain.confidence import ConfidenceSource, reinforced
from meshcore.domain.errors import Conflict, InvalidInput, NotFound, RecordUnavailable
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.task import Priority, Task, TaskStatus
from tests.fakes import FakeMesh

ONE_STEP = [{"key": "facts", "agent": "research", "description": "Find Orbit's facts"}]


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def finished(mesh: FakeMesh) -> tuple[Task, MemoryItem]:
    """A task run to its end whose research step read a fact a client wrote at 0.6."""
    network = mesh.create_network()
    fact = mesh.memory.add(
        network.id, type=MemoryType.FACT, content="Orbit costs $4.99 a month", confidence=0.6
    )
    task = mesh.tasks.submit(
        network.id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        plan=ONE_STEP,
    )
    mesh.drain()
    task = mesh.tasks.get(network.id, task.id)
    assert task.status.is_terminal
    assert str(fact.id) in read_by(mesh, task.id)
    mesh.clock.advance(60)
    return task, fact


def read_by(mesh: FakeMesh, task_id: UUID) -> set[str]:
    with mesh.uow(mesh.tenant_id) as uow:
        return {i for s in uow.tasks.every_subtask(task_id) if s.step for i in s.step.memory_read}


def confidence(mesh: FakeMesh, item: MemoryItem) -> float:
    return mesh.database.committed.memory[item.id].confidence


def rating_changes(mesh: FakeMesh, item: MemoryItem) -> list[tuple[str, float, float]]:
    history = mesh.learning.history(item.network_id, item.id)
    return [
        (c.reason, c.before, c.after)
        for c in history.changes
        if c.source is ConfidenceSource.RATING
    ]


def feedback(mesh: FakeMesh, task: Task) -> list[MemoryItem]:
    query = MemoryQuery(types=(MemoryType.FEEDBACK,), task_id=task.id, limit=100)
    return [i for i in mesh.memory.query(task.network_id, query) if i.metadata.get("score")]


def test_a_rating_of_1_lowers_the_confidence_of_what_the_task_read_saying_why(
    mesh: FakeMesh,
) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)

    rating, is_first = mesh.ratings.rate(task.network_id, task.id, 1, "Wrong price")

    assert is_first and (rating.score, rating.comment) == (1, "Wrong price")
    assert confidence(mesh, fact) == reinforced(before, -1.0) < before
    assert rating_changes(mesh, fact) == [
        (f"client rated task {task.id} 1/5", before, reinforced(before, -1.0))
    ]
    history = mesh.learning.history(task.network_id, fact.id)
    assert history.changes[-1].task_id == task.id


def test_a_rating_of_5_raises_it(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)

    mesh.ratings.rate(task.network_id, task.id, 5)

    assert confidence(mesh, fact) == reinforced(before, 1.0) > before
    assert [reason for reason, *_ in rating_changes(mesh, fact)] == [
        f"client rated task {task.id} 5/5"
    ]


def test_every_item_any_step_read_learns_and_the_view_agents_read_has_it(
    mesh: FakeMesh,
) -> None:
    task, _ = finished(mesh)
    read = read_by(mesh, task.id)
    before = {i: mesh.database.committed.memory[UUID(i)].confidence for i in read}

    mesh.ratings.rate(task.network_id, task.id, 2)

    after = {i: mesh.database.committed.memory[UUID(i)].confidence for i in read}
    assert after == {i: reinforced(c, -0.5) for i, c in before.items()}
    in_view = {str(i.id): i.confidence for i in mesh.memory.query(task.network_id, MemoryQuery())}
    assert {i: in_view[i] for i in read} == after


def test_the_rating_is_a_feedback_item_in_the_networks_memory(mesh: FakeMesh) -> None:
    task, _ = finished(mesh)

    mesh.ratings.rate(task.network_id, task.id, 4, "Clear, but name the price")

    (item,) = feedback(mesh, task)
    assert item.content == f"A client rated task {task.id} 4/5: Clear, but name the price"
    assert (item.type, item.task_id, item.confidence) == (MemoryType.FEEDBACK, str(task.id), 1.0)
    assert item.metadata["source"] == "rating"


def test_a_rating_without_a_comment_says_only_the_score(mesh: FakeMesh) -> None:
    task, _ = finished(mesh)

    mesh.ratings.rate(task.network_id, task.id, 3)

    assert [i.content for i in feedback(mesh, task)] == [f"A client rated task {task.id} 3/5"]


def test_a_3_says_nothing_of_what_the_task_read(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)

    mesh.ratings.rate(task.network_id, task.id, 3)

    assert confidence(mesh, fact) == before
    assert rating_changes(mesh, fact) == []


def test_a_changed_rating_moves_memory_only_by_the_difference(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    start = confidence(mesh, fact)
    mesh.ratings.rate(task.network_id, task.id, 4)
    mesh.clock.advance(60)

    rating, is_first = mesh.ratings.rate(task.network_id, task.id, 5, "Even better read again")

    assert not is_first and rating.score == 5
    # 4 said +0.5; 5 says +1 in all, so the change adds the other +0.5, not a whole +1.
    assert confidence(mesh, fact) == reinforced(reinforced(start, 0.5), 0.5)
    assert [reason for reason, *_ in rating_changes(mesh, fact)] == [
        f"client rated task {task.id} 4/5",
        f"client rated task {task.id} 5/5",
    ]


def test_from_1_to_5_the_difference_of_2_goes_as_two_full_verdicts(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    start = confidence(mesh, fact)
    mesh.ratings.rate(task.network_id, task.id, 1)
    low = confidence(mesh, fact)

    mesh.ratings.rate(task.network_id, task.id, 5)

    assert confidence(mesh, fact) == reinforced(reinforced(low, 1.0), 1.0)
    assert low < start < confidence(mesh, fact)


def test_the_same_rating_again_changes_nothing(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    first, _ = mesh.ratings.rate(task.network_id, task.id, 5, "Great")
    after_first = confidence(mesh, fact)
    mesh.clock.advance(60)

    again, is_first = mesh.ratings.rate(task.network_id, task.id, 5, "Great")

    assert not is_first and again == first
    assert confidence(mesh, fact) == after_first
    assert len(rating_changes(mesh, fact)) == 1
    assert len(feedback(mesh, task)) == 1


def test_a_new_comment_with_the_same_score_is_remembered_but_teaches_nothing_more(
    mesh: FakeMesh,
) -> None:
    task, fact = finished(mesh)
    mesh.ratings.rate(task.network_id, task.id, 5, "Great")
    after_first = confidence(mesh, fact)
    mesh.clock.advance(60)

    rating, _ = mesh.ratings.rate(task.network_id, task.id, 5, "Great, and on brand")

    assert rating.comment == "Great, and on brand"
    assert confidence(mesh, fact) == after_first
    assert len(feedback(mesh, task)) == 2
    assert mesh.ratings.get(task.network_id, task.id) == rating


def test_the_rating_reads_back_and_a_task_never_rated_has_none(mesh: FakeMesh) -> None:
    task, _ = finished(mesh)
    with pytest.raises(NotFound):
        mesh.ratings.get(task.network_id, task.id)

    rating, _ = mesh.ratings.rate(task.network_id, task.id, 4, "Good")

    assert mesh.ratings.get(task.network_id, task.id) == rating
    assert rating.created_at == rating.updated_at == mesh.clock.now()


@pytest.mark.parametrize(
    "status", [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.AWAITING_APPROVAL]
)
def test_a_task_that_has_not_finished_cannot_be_rated(mesh: FakeMesh, status: TaskStatus) -> None:
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Later", context={}, priority=Priority.NORMAL, auto_process=False
    )
    # Put in the status as the record would hold it mid-run.
    stored = mesh.database.committed.tasks[task.id]
    mesh.database.committed.tasks[task.id] = replace(stored, status=status)

    with pytest.raises(Conflict, match="only a finished task"):
        mesh.ratings.rate(network.id, task.id, 5)

    assert mesh.database.committed.ratings == {}


def test_a_cancelled_task_can_be_rated(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    task = mesh.tasks.submit(
        network.id, description="Later", context={}, priority=Priority.NORMAL, auto_process=False
    )
    mesh.tasks.cancel(network.id, task.id)

    _, is_first = mesh.ratings.rate(network.id, task.id, 2, "Cancelled too late")

    assert is_first


def test_a_bad_score_changes_nothing(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)

    with pytest.raises(InvalidInput) as refused:
        mesh.ratings.rate(task.network_id, task.id, 6)

    assert refused.value.field == "score"
    assert mesh.database.committed.ratings == {}
    assert confidence(mesh, fact) == before
    assert feedback(mesh, task) == []


def test_another_tenants_task_is_not_found_and_left_alone(mesh: FakeMesh) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)
    other = mesh.for_tenant("globex")

    with pytest.raises(NotFound):
        other.ratings.rate(task.network_id, task.id, 1)
    with pytest.raises(NotFound):
        other.ratings.get(task.network_id, task.id)

    assert mesh.database.committed.ratings == {}
    assert confidence(mesh, fact) == before


def test_a_task_of_another_network_or_a_missing_network_is_not_found(mesh: FakeMesh) -> None:
    task, _ = finished(mesh)
    elsewhere = mesh.create_network()
    missing = uuid4()

    with pytest.raises(NotFound) as in_other:
        mesh.ratings.rate(elsewhere.id, task.id, 4)
    with pytest.raises(NotFound) as no_network:
        mesh.ratings.rate(missing, task.id, 4)

    assert in_other.value.kind == "task"
    assert (no_network.value.kind, no_network.value.id) == ("network", missing)


def test_each_rating_is_counted_in_the_rating_histogram_once(mesh: FakeMesh) -> None:
    task, _ = finished(mesh)

    def count(bucket: str) -> float:
        return REGISTRY.get_sample_value("mesh_task_rating_bucket", {"le": bucket}) or 0.0

    before = (count("1.0"), count("5.0"), count("+Inf"))
    mesh.ratings.rate(task.network_id, task.id, 1)
    mesh.ratings.rate(task.network_id, task.id, 5)
    mesh.ratings.rate(task.network_id, task.id, 5)  # the same again: not a new rating

    after = (count("1.0"), count("5.0"), count("+Inf"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2, 2]


def test_a_rating_whose_lesson_cannot_be_recorded_is_not_kept_and_its_retry_teaches_once(
    mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    task, fact = finished(mesh)
    before = confidence(mesh, fact)

    def unavailable(*args: object, **kwargs: object) -> None:
        raise RecordUnavailable("the record (database) is unavailable; try again shortly")

    with monkeypatch.context() as patched:
        patched.setattr(mesh.ratings._learning, "record", unavailable)
        with pytest.raises(RecordUnavailable):
            mesh.ratings.rate(task.network_id, task.id, 1)
    with pytest.raises(NotFound):
        mesh.ratings.get(task.network_id, task.id)
    assert confidence(mesh, fact) == before

    mesh.ratings.rate(task.network_id, task.id, 1)  # the client's retry

    changes = mesh.learning.history(task.network_id, fact.id).changes
    assert [c.source for c in changes].count(ConfidenceSource.RATING) == 1
    assert confidence(mesh, fact) < before
