"""A memory item as a row: its content and metadata sealed, its fingerprints keyed.

A fingerprint is a keyed hash (Sealer.fingerprint) of what restatements and contradictions
compare: an item's normalised content (for the types that merge) and a decision's subject
(its normalised content without negations). The tenant, network and type go into the hash
with the text, so equal texts in two networks, or of two tenants, have unrelated
fingerprints: the record shows no more than which items of one network say the same, or
speak of the same subject, and only to whoever holds the data key can a fingerprint be
tested against a guess.
"""

from __future__ import annotations

from uuid import UUID

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql.rows import Row, aware, maybe_aware
from meshcore.domain.contradiction import CONTRADICTING, stance
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.restatement import MERGING, normalised


def memory_row(item: MemoryItem, sealer: Sealer) -> dict[str, object]:
    text, subject = hashed_texts(item.tenant_id, item.network_id, item.type, item.content)
    return {
        "id": item.id,
        "tenant_id": item.tenant_id,
        "network_id": item.network_id,
        "task_id": UUID(item.task_id) if item.task_id else None,
        "type": item.type.value,
        "content": sealer.seal(item.content),
        "confidence": item.confidence,
        "metadata": sealer.seal_json(item.metadata),
        "created_at": item.created_at,
        "fingerprint": sealer.fingerprint(text) if text is not None else None,
        "subject": sealer.fingerprint(subject) if subject is not None else None,
        "expires_at": item.expires_at,
        "promoted_at": item.promoted_at,
    }


def memory_from_row(row: Row, sealer: Sealer) -> MemoryItem:
    return MemoryItem(
        id=row["id"],
        tenant_id=row["tenant_id"],
        network_id=row["network_id"],
        type=MemoryType(row["type"]),
        content=sealer.open(row["content"]),
        confidence=row["confidence"],
        created_at=aware(row["created_at"]),
        metadata=sealer.open_json(row["metadata"]),
        expires_at=maybe_aware(row.get("expires_at")),
        promoted_at=maybe_aware(row.get("promoted_at")),
    )


def hashed_texts(
    tenant_id: str, network_id: UUID, type: MemoryType, content: str
) -> tuple[str | None, str | None]:
    """What an item's `fingerprint` and `subject` are keyed hashes of, each None for a type
    that has none (and the subject for a decision that is all negation words)."""
    scope = (tenant_id, str(network_id), type.value)
    text = _scoped("text", *scope, normalised(content)) if type in MERGING else None
    about = stance(content).subject if type in CONTRADICTING else ""
    return text, _scoped("subject", *scope, about) if about else None


def _scoped(kind: str, *parts: str) -> str:
    return "\x1f".join((kind, *parts))

