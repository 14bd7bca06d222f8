"""The sweeper: finds tasks whose progress stopped and re-drives them from the record.

A message can be lost for good: a worker killed mid-step with its message unacknowledged
(Redis gives it back only after the visibility timeout), a chord whose counter died with a
Redis restart, an enqueue that failed after the task was recorded. Every such loss leaves
the task's heartbeat still, so one query finds them all, across tenants.

A Redis that lost its data (flushed, restarted empty) lost every message at once; the fleet's
epoch says so at the next sweep, which then re-drives everything that was in flight before
the new epoch began instead of waiting for each heartbeat to age past the stall timeout.

A task awaiting approval of its plan has sent nothing, so it is never re-driven: the sweeper
only times it out once its approval deadline has passed (Coordination.redrive).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from meshcore.domain.errors import NotFound, Unavailable
from meshcore.ports import BrokerEpoch, Clock, DeliveryRef, StallFinder, TaskRef
from meshcore.services.coordination import Coordination
from meshcore.services.lifetimes import MemorySweep

log = structlog.get_logger(__name__)

# A delivery due for longer than this without an attempt taking it is sent again.
DELIVERY_GRACE = timedelta(seconds=30)


class Sweeper:
    def __init__(
        self,
        *,
        finder: StallFinder,
        coordination: Callable[[str], Coordination],
        clock: Clock,
        stall_seconds: float,
        epoch: BrokerEpoch | None = None,
        batch: int = 200,
        send_delivery: Callable[[DeliveryRef], None] | None = None,
        idempotency_lifetime: timedelta | None = None,
        memory: MemorySweep | None = None,
    ) -> None:
        self._finder, self._coordination, self._clock = finder, coordination, clock
        self._stall, self._batch = timedelta(seconds=stall_seconds), batch
        self._epoch = epoch
        self._send_delivery = send_delivery
        self._idempotency_lifetime = idempotency_lifetime
        self._memory = memory

    def sweep(self) -> dict[str, int]:
        """Re-drive every stalled task once; answers how many of each action were taken."""
        now = self._clock.now()
        actions: dict[str, int] = {}
        lost_since = self._lost_since(now)
        if lost_since is not None:
            # Everything in flight when Redis lost its data is stalled, however fresh its
            # heartbeat: re-drive it all now, page by page (each re-drive moves its heartbeat).
            seen: set[TaskRef] = set()
            while True:
                page = [r for r in self._finder.stalled(lost_since, self._batch) if r not in seen]
                if not page:
                    break
                seen.update(page)
                self._redrive(page, lost_since, actions)
            log.warning("sweep.redis_lost", since=lost_since.isoformat(), tasks=len(seen))
        before = now - self._stall
        self._redrive(self._finder.stalled(before, self._batch), before, actions)
        self._resend_deliveries(now, actions)
        self._forget_idempotency_keys(now, actions)
        if actions:
            log.warning("sweep.redrove", **actions)
        if self._memory is not None:
            # Memory whose lifetime is over (what expired, context of tasks that ended): work
            # of every sweep, logged as it goes (memory.swept), not a recovery to warn of.
            actions.update(self._memory.sweep(now))
        return actions

    def _resend_deliveries(self, now: datetime, actions: dict[str, int]) -> None:
        """Send the webhook deliveries that are due and not leased: a lost message, or a
        retry too far off to have been held on the broker. A message sent just now is left
        a grace period, so a busy queue is not sent the same delivery twice each sweep."""
        if self._send_delivery is None:
            return
        for ref in self._finder.due_deliveries(now - DELIVERY_GRACE, self._batch):
            self._send_delivery(ref)
            actions["webhook"] = actions.get("webhook", 0) + 1

    def _forget_idempotency_keys(self, now: datetime, actions: dict[str, int]) -> None:
        """Delete a batch of keys past their lifetime: a key is only ever taken anew, so
        without this every create's key would stay in the record for good."""
        if self._idempotency_lifetime is None:
            return
        forgotten = self._finder.forget_idempotency_keys(
            now - self._idempotency_lifetime, self._batch * 5
        )
        if forgotten:
            actions["idempotency_keys_forgotten"] = forgotten

    def _lost_since(self, now: datetime) -> datetime | None:
        if self._epoch is None:
            return None
        try:
            return self._epoch.lost_since(now)
        except Unavailable as exc:
            log.warning("sweep.epoch_unknown", error=str(exc))  # checked again next sweep
            return None

    def _redrive(self, refs: list[TaskRef], before: datetime, actions: dict[str, int]) -> None:
        for ref in refs:
            try:
                action = self._coordination(ref.tenant_id).redrive(ref.task_id, before)
            except NotFound:
                continue  # deleted with its network since the query
            except Unavailable:
                raise  # the record or Redis is away: the next sweep tries them all again
            except Exception as exc:  # noqa: BLE001 - one task that cannot be re-driven (its
                # content sealed under a key this fleet lacks, say) must not hold back the rest
                log.error(
                    "sweep.redrive_failed",
                    task_id=str(ref.task_id),
                    tenant=ref.tenant_id,
                    error=type(exc).__name__,
                )
                actions["failed"] = actions.get("failed", 0) + 1
                continue
            if action is not None:
                actions[action] = actions.get(action, 0) + 1
