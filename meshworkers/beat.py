"""The periodic sweep's sender, run in a thread of the worker that `mesh worker --beat` starts.

Celery's own `worker --beat` forks a process for it: a second copy of the worker's memory
(litellm and all, about 130 MiB once its pages are touched) to send one message every few
seconds. Celery's embedded beat service also runs as a thread; this bootstep starts it so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import bootsteps
from celery.beat import EmbeddedService


def threaded_beat(schedule: Path) -> type[bootsteps.StartStopStep]:
    """A worker bootstep that runs beat in a thread, keeping its schedule in `schedule`."""

    class ThreadedBeat(bootsteps.StartStopStep):
        label = "Beat (thread)"

        def create(self, w: Any) -> Any:
            # Its stop waits for the thread: the worker's shutdown stops it like any step.
            return EmbeddedService(w.app, thread=True, schedule_filename=str(schedule))

    return ThreadedBeat
