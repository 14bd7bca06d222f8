"""How long a wait for a task may still last, and how long each long poll of it holds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshclient._errors import WaitTimeout

# Under the API's 60 s bound, and under the idle cut of most proxies.
LONG_POLL_SECONDS = 30


@dataclass
class Deadline:
    """The end of a wait for a task; None waits until the task ends."""

    timeout: float | None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _end: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if self.timeout < 0:
                raise ValueError("timeout must be 0 or more seconds")
            self._end = self.clock() + self.timeout

    def next_poll(self, task_id: str, status: str) -> int:
        """Seconds the next long poll may hold; WaitTimeout once none are left."""
        if self._end is None or self.timeout is None:
            return LONG_POLL_SECONDS
        left = self._end - self.clock()
        if left <= 0:
            raise WaitTimeout(task_id, status, self.timeout)
        # Whole seconds, the unit `wait` is documented in: the last poll may end up to a
        # second past the deadline.
        return min(LONG_POLL_SECONDS, math.ceil(left))
