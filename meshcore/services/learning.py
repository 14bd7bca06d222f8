"""What memory learns: verdicts on the work that used some items move their confidence.

The record changes first, in one transaction that holds each item's row while it moves it;
the view in Redis, which agents read, is told after the commit. A view that misses the news
(Redis down) is rebuilt from the record when its mark expires, as for any write.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import structlog

from meshcore.domain.confidence import (
    ConfidenceChange,
    ConfidenceHistory,
    ConfidenceSource,
    Move,
    Reinforce,
    check_signal,
    items_read,
    judged,
    verdict_signal,
)
from meshcore.domain.errors import MemoryViewUnavailable
from meshcore.domain.memory import MemoryQuery
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import StepRecord, Task
from meshcore.ports import Clock, MemoryStore, UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)


class MemoryLearning:
    """One tenant's changes to its memory items' confidence, and their history."""

    def __init__(
        self, tenant_id: str, uow: UnitOfWorkFactory, store: MemoryStore, clock: Clock
    ) -> None:
        self._tenant_id, self._uow, self._store, self._clock = tenant_id, uow, store, clock

    def learn(
        self,
        network_id: UUID,
        item_ids: Sequence[UUID],
        signal: float,
        *,
        source: ConfidenceSource,
        reason: str,
        task_id: UUID | None,
    ) -> list[ConfidenceChange]:
        """Move each item's confidence by `signal` in [-1, 1] (a pass > 0, a fail < 0),
        recording why; answers the changes made, in the order the items were given.

        An id given twice counts once. Items that are not the network's (another network's,
        another tenant's, deleted) are left alone, as are items the verdict does not move
        (already at the bound it pushes toward): neither has a change.
        """
        if not item_ids:
            check_signal(signal)
            return []
        with self._uow(self._tenant_id) as uow:
            made = self.record(
                uow, network_id, item_ids, signal, source=source, reason=reason, task_id=task_id
            )
            uow.commit()
        self.tell_view(network_id, made)
        return made

    def record(
        self,
        uow: UnitOfWork,
        network_id: UUID,
        item_ids: Sequence[UUID],
        signal: float,
        *,
        source: ConfidenceSource,
        reason: str,
        task_id: UUID | None,
    ) -> list[ConfidenceChange]:
        """`learn` within the caller's unit of work, which commits it with what else it
        holds (a verdict, a rating), so the lesson is taken once with it; the caller tells
        the view after its commit (`tell_view`)."""
        reinforce = Reinforce(signal)
        return self._move(
            uow, network_id, {i: (reinforce, reason) for i in item_ids},
            source=source, task_id=task_id,
        )  # fmt: skip

    def record_verdict(
        self, uow: UnitOfWork, task: Task, iteration: int, score: float, config: NetworkConfig
    ) -> list[ConfidenceChange]:
        """The critic's verdict on an iteration's synthesis, within the verdict's own
        transaction (a redelivered review teaches memory nothing again):
        - what the iteration's steps wrote takes the critic's judgement of it in place of
          the agent's own (`judged`);
        - what they read from before is raised by a pass and lowered by a failure."""
        threshold = config.quality_threshold
        verdict = "passed" if score >= threshold else "failed"
        said = (
            f"iteration {iteration} of task {task.id} "
            f"(score {score:.2f}, threshold {threshold:.2f})"
        )
        steps = uow.steps.for_iteration(task.id, iteration)
        written = written_by(uow, task, iteration, steps)
        read = [i for i in items_read(steps) if i not in written]
        judgement, reinforce = judged(score, threshold), Reinforce(verdict_signal(score, threshold))
        moves = {i: (judgement, f"{verdict} by the critic: {said}") for i in written}
        moves |= {i: (reinforce, f"the critic {verdict} {said}") for i in read}
        return self._move(
            uow, task.network_id, moves, source=ConfidenceSource.CRITIC, task_id=task.id
        )

    def _move(
        self,
        uow: UnitOfWork,
        network_id: UUID,
        moves: dict[UUID, tuple[Move, str]],
        *,
        source: ConfidenceSource,
        task_id: UUID | None,
    ) -> list[ConfidenceChange]:
        """Make each item's move, with its reason; answers the changes in `moves`' order."""
        made: dict[UUID, ConfidenceChange] = {}
        # One order for every learner, across all the items of a transaction: two verdicts
        # on overlapping items (what one task wrote another read) lock their rows in the same
        # order, so neither waits on the other for ever.
        for item_id in sorted(moves):
            move, reason = moves[item_id]
            change = uow.memory.change_confidence(
                network_id, item_id, move,
                source=source, reason=reason, task_id=task_id, at=self._clock.now(),
            )  # fmt: skip
            if change is not None:
                made[item_id] = change
        if moves:
            log.info(
                "memory.learned", network_id=str(network_id), source=source.value,
                task_id=str(task_id) if task_id else None, items=len(moves), changed=len(made),
            )  # fmt: skip
        return [made[i] for i in moves if i in made]

    def history(self, network_id: UUID, item_id: UUID) -> ConfidenceHistory:
        """The item's confidence now and every change to it, oldest first; NotFound for a
        network or item the tenant lacks."""
        with self._uow(self._tenant_id) as uow:
            uow.networks.require(network_id)
            item = uow.memory.get(network_id, item_id)
            changes = uow.memory.confidence_history(network_id, item_id)
        return ConfidenceHistory(item_id=item.id, confidence=item.confidence, changes=changes)

    def tell_view(self, network_id: UUID, changes: Sequence[ConfidenceChange]) -> None:
        """Give the view in Redis the confidences a commit changed."""
        try:
            for change in changes:
                self._store.set_confidence(
                    self._tenant_id, network_id, change.item_id, change.after, at=change.at
                )
        except MemoryViewUnavailable as exc:
            # Recorded all the same: the view's mark expires and it is rebuilt from the record.
            log.warning("memory.view_stale", items=len(changes), error=str(exc))


def written_by(
    uow: UnitOfWork, task: Task, iteration: int, steps: Sequence[StepRecord]
) -> list[UUID]:
    """What the iteration's steps wrote to memory, but the critic's own feedback: the work
    its verdict judges. An output that restated an item already there is held by that item
    (memory_writes.py), which is judged in its place. A task writes a handful of items an
    iteration; the bound is loose."""
    own = uow.memory.list(task.network_id, MemoryQuery(task_id=task.id, limit=1000))
    held = uow.memory.restatements(task.network_id, task.id, [s.key for s in steps])
    return list(dict.fromkeys(
        m.id
        for m in [*own, *held]
        if m.metadata.get("iteration") == iteration and m.metadata.get("source_agent") != "critic"
    ))  # fmt: skip
