"""Clients' ratings of their finished tasks, and what shared memory learns from them.

A rating is a verdict on the work, as the critic's is: it is written to the network's memory
as a feedback item, and it moves the confidence of the memory items the task's steps read
(up for a 5, down for a 1, not at all for a 3). A changed rating moves them only by the
difference from the rating it replaces, so rating again never compounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import structlog

from meshcore.domain.confidence import ConfidenceChange, ConfidenceSource
from meshcore.domain.errors import Conflict, NotFound
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.rating import MAX_SCORE, Rating
from meshcore.ports import Clock, MemoryStore, UnitOfWork, UnitOfWorkFactory
from meshcore.services.learning import MemoryLearning
from meshcore.services.lifetimes import DEFAULT_BOUND
from meshcore.services.memory_view import MemoryView
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

# The client said it: as certain as an item a client writes through the memory API.
FEEDBACK_CONFIDENCE = 1.0


class RatingService:
    def __init__(
        self,
        *,
        tenant_id: str,
        uow: UnitOfWorkFactory,
        store: MemoryStore,
        clock: Clock,
        memory_bound: int = DEFAULT_BOUND,
    ) -> None:
        self._tenant_id, self._uow, self._clock = tenant_id, uow, clock
        self._view = MemoryView(
            tenant_id=tenant_id, uow=uow, store=store, clock=clock, bound=memory_bound
        )
        self._learning = MemoryLearning(tenant_id=tenant_id, uow=uow, store=store, clock=clock)

    def rate(
        self, network_id: UUID, task_id: UUID, score: int, comment: str | None = None
    ) -> tuple[Rating, bool]:
        """Rate a finished task, or change its rating; answers the rating and whether it is
        the task's first. NotFound for a task the network lacks, Conflict for one that has
        not finished, InvalidInput (changing nothing) for a score outside 1-5."""
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                # Locked: two ratings of a task take turns, so each change's difference is
                # taken from the rating it replaces.
                task = uow.tasks.locked_in_network(task_id, network_id=network_id)
            if not task.status.is_terminal:
                raise Conflict(
                    f"task {task_id} is {task.status}: only a finished task (completed, failed,"
                    " cancelled or timed_out) can be rated; rate it once it has ended"
                )
            now = self._clock.now()
            before = uow.ratings.get(task_id)
            if before is None:
                rating = Rating.create(task_id, score, comment, now=now)
            else:
                rating = before.changed_to(score, comment, now=now)
            if rating == before:
                return rating, False  # the same rating again (a retry): nothing changes
            uow.ratings.put(rating)
            relied_on = _memory_read(uow, task_id)
            # In the rating's own transaction: a rating that did not commit taught nothing, so
            # its retry teaches once.
            lessons = self._teach(uow, network_id, rating, relied_on, before)
            self._view.remember(uow, self._feedback(network_id, rating))
        self._learning.tell_view(network_id, lessons)
        metrics.task_rating.observe(score)
        log.info(
            "task.rated",
            task_id=str(task_id),
            score=score,
            previous=before.score if before else None,
            items=len(relied_on),
        )
        return rating, before is None

    def get(self, network_id: UUID, task_id: UUID) -> Rating:
        """The task's rating; NotFound for a task the network lacks, or one not rated."""
        with self._uow(self._tenant_id) as uow:
            with _missing_network_named(uow, network_id):
                uow.tasks.revision(task_id, network_id=network_id)
            rating = uow.ratings.get(task_id)
        if rating is None:
            raise NotFound("rating of task", task_id)
        return rating

    def _feedback(self, network_id: UUID, rating: Rating) -> MemoryItem:
        said = f": {rating.comment}" if rating.comment else ""
        return MemoryItem.create(
            tenant_id=self._tenant_id,
            network_id=network_id,
            type=MemoryType.FEEDBACK,
            content=f"A client rated task {rating.task_id} {rating.score}/{MAX_SCORE}{said}",
            confidence=FEEDBACK_CONFIDENCE,
            now=rating.updated_at,
            metadata={"task_id": str(rating.task_id), "source": "rating", "score": rating.score},
        )

    def _teach(
        self,
        uow: UnitOfWork,
        network_id: UUID,
        rating: Rating,
        item_ids: list[UUID],
        before: Rating | None,
    ) -> list[ConfidenceChange]:
        """Move the items by the rating's signal, less the one it replaces; a change of rating
        can differ by up to 2 (1 -> 5), past what one verdict may say, so it goes as
        successive verdicts of at most 1."""
        signal = rating.signal - (before.signal if before is not None else 0.0)
        reason = f"client rated task {rating.task_id} {rating.score}/{MAX_SCORE}"
        return [
            change
            for part in (_parts(signal) if item_ids else ())
            for change in self._learning.record(
                uow,
                network_id,
                item_ids,
                part,
                source=ConfidenceSource.RATING,
                reason=reason,
                task_id=rating.task_id,
            )
        ]


def _parts(signal: float) -> Iterator[float]:
    """`signal` as steps of at most 1 in size, summing to it: 2 -> 1, 1; -1.5 -> -1, -0.5."""
    left = signal
    while left:
        part = max(-1.0, min(1.0, left))
        yield part
        left -= part


def _memory_read(uow: UnitOfWork, task_id: UUID) -> list[UUID]:
    """The memory items the task's steps read, each once, in the order first read."""
    read: dict[UUID, None] = {}
    for subtask in uow.tasks.every_subtask(task_id):
        if subtask.step is not None:
            read.update(dict.fromkeys(UUID(i) for i in subtask.step.memory_read))
    return list(read)


@contextmanager
def _missing_network_named(uow: UnitOfWork, network_id: UUID) -> Iterator[None]:
    """A task not found in a network that does not exist either is reported as the network."""
    try:
        yield
    except NotFound:
        uow.networks.require(network_id)
        raise
