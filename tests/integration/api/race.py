"""Two requests truly at once: a held row lock keeps both in flight until both are waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def race(
    engine: sa.Engine, lock: str, params: dict[str, object], calls: Sequence[Callable[[], T]]
) -> list[T]:
    """Run `calls` in threads while another transaction holds the row `lock` selects.

    The hold ends once every call still running waits behind it, so each has reached whatever
    first needs the row (a locked read, or the update of an unlocked one) before any goes on.
    Answers the calls' results in the order they finished.
    """
    results: list[T] = []
    threads = [threading.Thread(target=lambda c=c: results.append(c())) for c in calls]
    with engine.connect() as holder, engine.connect() as watcher:
        holder.execute(sa.text(lock), params)
        holder_pid = holder.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while (running := sum(t.is_alive() for t in threads)) and time.monotonic() < deadline:
            if blocked_behind(watcher, holder_pid) == running:
                break
            time.sleep(0.05)
        else:
            waiting = blocked_behind(watcher, holder_pid)
            assert running == 0, f"{running} calls still running, {waiting} waiting on the lock"
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == len(calls), "a call raised (see the thread's traceback)"
    return results


def blocked_behind(db: sa.Connection, holder: int) -> int:
    """How many backends wait, directly or in a queue of waiters, on the lock `holder` holds."""
    rows = db.execute(
        sa.text(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
        )
    ).all()
    db.rollback()  # a fresh snapshot of the activity each time
    waiting, chain = {pid: set(blockers) for pid, blockers in rows}, {holder}
    while grown := {pid for pid, blockers in waiting.items() if blockers & chain} - chain:
        chain |= grown
    return len(chain) - 1
