"""Shared memory: typed items with a confidence, written and read by agents."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from meshcore.domain.errors import InvalidInput

MAX_CONTENT = 20_000


class MemoryType(enum.StrEnum):
    FACT = "fact"
    CONTEXT = "context"
    DECISION = "decision"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class MemoryItem:
    id: UUID
    tenant_id: str
    network_id: UUID
    type: MemoryType
    content: str
    confidence: float
    created_at: datetime
    metadata: dict[str, object] = field(default_factory=dict)
    # The decisions this one contradicts (contradiction.py), as the record links them: filled
    # in where a reader is shown them (the API), empty as the view holds the item.
    contradicts: tuple[UUID, ...] = ()
    # Its lifetime (lifetimes.py): when its type's time to live ends it, if it has one, and
    # when it was promoted to last (its expiry cleared, a context item kept past its task).
    expires_at: datetime | None = None
    promoted_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        tenant_id: str,
        network_id: UUID,
        type: MemoryType,
        content: str,
        confidence: float,
        now: datetime,
        metadata: dict[str, object] | None = None,
    ) -> MemoryItem:
        if not content.strip():
            raise InvalidInput("content", "must not be empty")
        if len(content) > MAX_CONTENT:
            raise InvalidInput("content", f"must be at most {MAX_CONTENT} characters")
        if not 0.0 <= confidence <= 1.0:
            raise InvalidInput("confidence", "must be between 0 and 1")
        return cls(
            uuid4(), tenant_id, network_id, type, content, confidence, now, dict(metadata or {})
        )

    @property
    def task_id(self) -> str | None:
        value = self.metadata.get("task_id")
        return str(value) if value else None

    @property
    def subtask(self) -> str | None:
        value = self.metadata.get("subtask")
        return str(value) if value else None

    def has_expired(self, now: datetime) -> bool:
        """Whether its lifetime is over: the sweep deletes it at its next run."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class MemoryQuery:
    """What an agent or a client asks of the shared memory: newest first, bounded."""

    types: tuple[MemoryType, ...] = tuple(MemoryType)
    min_confidence: float = 0.0
    limit: int = 20
    task_id: UUID | None = None
    offset: int = 0
