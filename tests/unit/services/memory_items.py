"""Memory items added through the service, one a minute apart, for the memory unit tests."""

from __future__ import annotations

from uuid import UUID

from meshcore.domain.memory import MemoryItem, MemoryType
from tests.fakes import FakeMesh


def add(
    mesh: FakeMesh,
    network_id: UUID,
    content: str,
    *,
    type: MemoryType = MemoryType.FACT,
    confidence: float = 0.9,
) -> MemoryItem:
    """Add an item a minute after the last one, so newest-first has an answer."""
    mesh.clock.advance(60)
    return mesh.memory.add(network_id, type=type, content=content, confidence=confidence)
