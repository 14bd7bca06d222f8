"""When to try a request again, and how long to wait first: the same for both clients."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from meshclient._errors import retry_after

# 429: the key's rate or the tenant's tasks in flight; 503: a dependency of the API is down.
# Both are answered before anything is stored, so trying again cannot do the work twice.
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded; the API's Retry-After wins when it says."""

    retries: int = 3
    base: float = 0.5
    max_backoff: float = 20.0
    # A Retry-After longer than this is handed to the caller (RateLimited.retry_after) rather
    # than slept through inside one call.
    max_retry_after: float = 60.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")

    def backoff(self, attempt: int) -> float:
        """A random wait in [0, base * 2^(attempt-1)], capped at max_backoff."""
        return self.random() * min(self.max_backoff, self.base * 2 ** (attempt - 1))

    def after_response(
        self, status: int, headers: Mapping[str, str], *, attempt: int, is_retryable: bool
    ) -> float | None:
        """Seconds to wait before trying again after this answer; None: it is final."""
        if not is_retryable or status not in RETRY_STATUSES or attempt > self.retries:
            return None
        seconds = retry_after(headers)
        if seconds is None:
            return self.backoff(attempt)
        return seconds if seconds <= self.max_retry_after else None

    def after_failure(self, *, attempt: int, is_retryable: bool) -> float | None:
        """Seconds to wait before trying again after a connection failure; None: give up."""
        if not is_retryable or attempt > self.retries:
            return None
        return self.backoff(attempt)
