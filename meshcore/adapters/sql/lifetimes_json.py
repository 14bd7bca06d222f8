"""A network's memory policy (domain/lifetimes.py) in its config's JSON."""

from __future__ import annotations

from collections.abc import Mapping

from meshcore.domain.lifetimes import MemoryPolicy
from meshcore.domain.memory import MemoryType


def policy_to_json(policy: MemoryPolicy) -> dict[str, object]:
    return {
        "ttl_seconds": {kind.value: seconds for kind, seconds in policy.ttl_seconds.items()},
        "max_items": policy.max_items,
    }


def policy_from_json(data: object) -> MemoryPolicy:
    """A row written before lifetimes existed has none: its items last, bounded as the
    deployment bounds every network."""
    if not isinstance(data, Mapping):
        return MemoryPolicy()
    ttl = data.get("ttl_seconds") or {}
    max_items = data.get("max_items")
    return MemoryPolicy(
        ttl_seconds={MemoryType(kind): int(seconds) for kind, seconds in ttl.items()},
        max_items=int(max_items) if max_items is not None else None,
    )
