"""The line a worker logs when it stops holding messages, in Mesh's words.

A stopping worker hands every message it holds back to Redis; kombu says so as "Restoring N
unacknowledged message(s)", which reads like lost work. On an idle stop they are the
deadline timers of recent tasks (each task's `mesh.expire` is an ETA message that a
coordinator holds until it is due) and nothing is lost: the next worker takes them over.
"""

from __future__ import annotations

import logging
import re

KOMBU_LOGGER = "kombu.transport.virtual.base"
_RESTORING = re.compile(r"Restoring (\d+) unacknowledged message\(s\)")


class HandBackNote(logging.Filter):
    """Rewrites kombu's restore line as a `worker.handing_back` event that says what it means."""

    def filter(self, record: logging.LogRecord) -> bool:
        if match := _RESTORING.fullmatch(record.getMessage()):
            record.msg = (
                f"worker.handing_back: {match[1]} message(s) this worker held (task deadline "
                "timers, steps it had not finished) go back to the queue for the next worker"
            )
            record.args = ()
        return True


def install() -> None:
    """Add the note to kombu's logger (call once a worker's logging is configured)."""
    logging.getLogger(KOMBU_LOGGER).addFilter(HandBackNote())
