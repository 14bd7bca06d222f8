"""Quotas: how much one tenant may hold at once. Each refusal names the quota and its limit,
and says what the client can do about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from meshcore.domain.errors import QuotaExceeded, TooManyTasksInFlight


class Quota(enum.StrEnum):
    NETWORKS = "networks_per_tenant"
    AGENTS = "agents_per_network"
    MEMORY_ITEMS = "memory_items_per_network"
    TASKS_IN_FLIGHT = "tasks_in_flight"  # queued (held ones too) or running

    @property
    def is_per_network(self) -> bool:
        return self in (Quota.AGENTS, Quota.MEMORY_ITEMS)


_REMEDY = {
    Quota.NETWORKS: "this tenant has {used} networks; delete one to create another",
    Quota.AGENTS: "the network would have {total} agents; remove one to add another",
    Quota.MEMORY_ITEMS: "the network holds {used} memory items; it takes no more from "
    "clients, and a new network starts empty",
    Quota.TASKS_IN_FLIGHT: "this tenant has {used} tasks queued or running; retry once some finish",
}


@dataclass(frozen=True)
class Quotas:
    """The limits (settings `MESH_MAX_*`); the defaults are generous."""

    networks_per_tenant: int = 1000
    agents_per_network: int = 64
    memory_items_per_network: int = 100_000
    tasks_in_flight: int = 1000

    def limit(self, quota: Quota) -> int:
        return int(getattr(self, quota.value))

    def check(self, quota: Quota, *, used: int, adding: int = 1) -> None:
        """Refuse unless `adding` more fit beside the `used` ones: QuotaExceeded, or
        TooManyTasksInFlight (which a retry later can pass) for tasks."""
        limit = self.limit(quota)
        if used + adding <= limit:
            return
        remedy = _REMEDY[quota].format(used=used, total=used + adding)
        message = f"quota {quota.value} is {limit}: {remedy}"
        if quota is Quota.TASKS_IN_FLIGHT:
            raise TooManyTasksInFlight(quota.value, limit, message)
        raise QuotaExceeded(quota.value, limit, message)


DEFAULT_QUOTAS = Quotas()
