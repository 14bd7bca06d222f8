"""The sweeper: finds tasks whose progress stopped and re-drives them from the record.

A message can be lost for good: a worker killed mid-step with its message unacknowledged
(Redis gives it back only after the visibility timeout), a chord whose counter died with a
Redis restart, an enqueue that failed after the task was recorded. Every such loss leaves
the task's heartbeat still, so one query finds them all, across tenants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import structlog

from meshcore.domain.errors import NotFound
from meshcore.ports import Clock, StallFinder
from meshcore.services.coordination import Coordination

log = structlog.get_logger(__name__)


class Sweeper:
    def __init__(
        self,
        *,
        finder: StallFinder,
        coordination: Callable[[str], Coordination],
        clock: Clock,
        stall_seconds: float,
        batch: int = 200,
    ) -> None:
        self._finder, self._coordination, self._clock = finder, coordination, clock
        self._stall, self._batch = timedelta(seconds=stall_seconds), batch

    def sweep(self) -> dict[str, int]:
        """Re-drive every stalled task once; answers how many of each action were taken."""
        before = self._clock.now() - self._stall
        actions: dict[str, int] = {}
        for ref in self._finder.stalled(before, self._batch):
            try:
                action = self._coordination(ref.tenant_id).redrive(ref.task_id, before)
            except NotFound:
                continue  # deleted with its network since the query
            if action is not None:
                actions[action] = actions.get(action, 0) + 1
        if actions:
            log.warning("sweep.redrove", **actions)
        return actions
