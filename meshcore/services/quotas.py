"""Taking a slot of a quota inside the unit of work that fills it."""

from __future__ import annotations

from uuid import UUID

from meshcore.domain.quotas import Quota, Quotas
from meshcore.ports import UnitOfWork


def reserve(
    uow: UnitOfWork, quotas: Quotas, quota: Quota, scope: UUID | None = None, *, adding: int = 1
) -> None:
    """Lock the quota until `uow` ends, then refuse (QuotaExceeded) unless `adding` more fit.

    Call it before the insert it guards: the lock makes the count and the insert one step, so
    two creates at the last slot cannot both pass.
    """
    uow.quotas.hold(quota, scope)
    used = uow.quotas.used(quota, scope, up_to=quotas.limit(quota))
    quotas.check(quota, used=used, adding=adding)
