"""Idempotent creates: a client's key for a create, and what an earlier create under it made.

A client sends `Idempotency-Key` with a create; the first create under a key records what it
made, in the same transaction. A retry with the same key and the same request answers with
that resource and creates nothing; the same key with another request is refused. Keys are
the tenant's, and forgotten after a day (a setting).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

MAX_KEY_LENGTH = 255


class Created(enum.StrEnum):
    """The kind of resource a create made."""

    NETWORK = "network"
    AGENT = "agent"
    TASK = "task"
    MEMORY = "memory"


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key for one create, and the fingerprint of the request it came with."""

    key: str
    fingerprint: str  # a digest of the method, path and body: what "the same request" means


@dataclass(frozen=True)
class PriorCreate:
    """What an earlier create under a key made."""

    key: str
    fingerprint: str
    created: Created
    resource_id: UUID | None
    created_at: datetime

    def matches(self, claim: IdempotencyKey, created: Created) -> bool:
        return self.fingerprint == claim.fingerprint and self.created is created
