"""The one rule every idempotent create follows, inside its unit of work."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import structlog

from meshcore.domain.errors import IdempotencyKeyReused
from meshcore.domain.idempotency import Created, IdempotencyKey
from meshcore.ports import UnitOfWork

log = structlog.get_logger(__name__)

DEFAULT_LIFETIME = timedelta(hours=24)


def earlier_create(
    uow: UnitOfWork,
    claim: IdempotencyKey | None,
    created: Created,
    *,
    now: datetime,
    lifetime: timedelta,
) -> UUID | None:
    """What an earlier create under the client's key made, to answer with instead of creating;
    None when this create goes ahead (holding the key until its unit of work ends).

    IdempotencyKeyReused when the key came with another request. Called first in the unit of
    work, so a create that waits for a concurrent one holds nothing meanwhile.
    """
    if claim is None:
        return None
    prior = uow.idempotency.claim(claim, created, now=now, expired_before=now - lifetime)
    if prior is None:
        return None
    if not prior.matches(claim, created) or prior.resource_id is None:
        raise IdempotencyKeyReused(claim.key)
    log.info("create.replayed", created=created.value, resource_id=str(prior.resource_id))
    return prior.resource_id
