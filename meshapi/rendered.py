"""Ended tasks' answers, kept as they were sent, per API process.

A task that has ended changes only by what moves its revision (a webhook attempt appends an
event), so its answer at a revision is the same for every reader: the record need not be
read, nor the content opened, nor the body built again. Clients read ended tasks most of
all: a waiting client's last read is one, and so is every look at a finished result.

An answer is kept under the tenant, the network, the task and the view, with the revision it
was made at, and served only once the revision Redis (or the record) says is current is that
one: the same lookup a conditional GET makes, so an answer is never served to another
tenant, for a deleted network, or past a change. A task with nothing kept (one still running,
or read for the first time) costs no lookup more than before. Bodies are plaintext, so
they stay in this process's memory only, within a byte budget; the least recently read go
first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

# The app's extension that holds them (meshapi.app makes it).
RENDERED = "mesh_rendered_tasks"
# Per API process: about 500 full tasks of 30 KB.
BUDGET_BYTES = 16 * 2**20
# A body larger than this is not kept: it would push out many others.
LARGEST_BYTES = BUDGET_BYTES // 16


class RenderedTasks:
    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self._budget, self._used = budget, 0
        self._bodies: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[int, bytes] | None:
        """The answer kept under `key` and the revision it was made at."""
        with self._lock:
            kept = self._bodies.get(key)
            if kept is not None:
                self._bodies.move_to_end(key)
            return kept

    def put(self, key: Hashable, revision: int, body: bytes) -> None:
        if len(body) > min(LARGEST_BYTES, self._budget):
            return
        with self._lock:
            if (old := self._bodies.pop(key, None)) is not None:
                self._used -= len(old[1])
            self._bodies[key] = (revision, body)
            self._used += len(body)
            while self._used > self._budget:
                _, (_, dropped) = self._bodies.popitem(last=False)
                self._used -= len(dropped)
