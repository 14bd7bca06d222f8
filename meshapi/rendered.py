"""Ended tasks' answers, kept as they were sent, per API process.

A task that has ended changes only by what moves its revision (a webhook attempt appends an
event), so its answer at a revision is the same for every reader: the record need not be
read, nor the content opened, nor the body built again. Clients read ended tasks most of
all: a waiting client's last read is one, and so is every look at a finished result.

A kept answer is found only through its key: the tenant, the network, the task, the revision
that Redis (or the record) says is current, and the view. That lookup is the same one a
conditional GET makes, so an answer is never served to another tenant, for a deleted
network, or past a change. Bodies are plaintext, so they stay in this process's memory only,
within a byte budget; the least recently read go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

# Per API process: about 500 full tasks of 30 KB.
BUDGET_BYTES = 16 * 2**20
# A body larger than this is not kept: it would push out many others.
LARGEST_BYTES = BUDGET_BYTES // 16


class RenderedTasks:
    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self._budget, self._used = budget, 0
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > min(LARGEST_BYTES, self._budget):
            return
        with self._lock:
            if (old := self._bodies.pop(key, None)) is not None:
                self._used -= len(old)
            self._bodies[key] = body
            self._used += len(body)
            while self._used > self._budget:
                _, dropped = self._bodies.popitem(last=False)
                self._used -= len(dropped)
