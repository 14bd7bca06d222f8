"""The ratings repository's contract, held by the SQL adapter and the fake alike (as
test_repository_contract.py holds the others'): one rating a task, changed in place, sealed,
and the tenant's own."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from meshcore.adapters.sealing import Sealer
from meshcore.adapters.sql import tenancy
from meshcore.adapters.sql.uow import SqlUnitOfWorkFactory
from meshcore.domain.errors import NotFound
from meshcore.domain.rating import Rating
from meshcore.ports import UnitOfWorkFactory
from tests.conftest import DATA_KEYS
from tests.integration.contract import NOW, engine_clearing, new_task, stored, stored_network
from tests.integration.contract import tenant as tenant
from tests.integration.contract import uow as uow

pytestmark = pytest.mark.integration

LATER = NOW + timedelta(minutes=5)


def rated(uow: UnitOfWorkFactory, tenant: str) -> Rating:
    task = new_task(stored_network(uow, tenant))
    stored(uow, task)
    rating = Rating.create(task.id, 2, "The price is wrong", now=NOW)
    with uow(tenant) as work:
        work.ratings.put(rating)
        work.commit()
    return rating


def test_a_rating_reads_back_as_put_and_a_task_never_rated_has_none(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    rating = rated(uow, tenant)
    unrated = new_task(stored_network(uow, tenant))
    stored(uow, unrated)

    with uow(tenant) as work:
        assert work.ratings.get(rating.task_id) == rating
        assert work.ratings.get(unrated.id) is None


def test_a_changed_rating_takes_the_place_of_the_first_which_keeps_its_time(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    rating = rated(uow, tenant)
    changed = rating.changed_to(5, None, now=LATER)

    with uow(tenant) as work:
        # As a caller that did not read the first: the record keeps when it was made.
        work.ratings.put(Rating(rating.task_id, 5, None, LATER, LATER))
        work.commit()

    with uow(tenant) as work:
        assert work.ratings.get(rating.task_id) == changed


def test_a_rating_put_and_rolled_back_is_not_there(uow: UnitOfWorkFactory, tenant: str) -> None:
    task = new_task(stored_network(uow, tenant))
    stored(uow, task)

    with uow(tenant) as work:
        work.ratings.put(Rating.create(task.id, 4, None, now=NOW))  # and no commit

    with uow(tenant) as work:
        assert work.ratings.get(task.id) is None


def test_a_rating_is_the_tenants_own(uow: UnitOfWorkFactory, tenant: str) -> None:
    rating = rated(uow, tenant)

    with uow(f"{tenant}-other") as work:
        assert work.ratings.get(rating.task_id) is None


def test_a_rating_of_a_task_the_record_lacks_is_not_found(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    missing = new_task(stored_network(uow, tenant))  # never stored

    with pytest.raises(NotFound), uow(tenant) as work:
        work.ratings.put(Rating.create(missing.id, 3, None, now=NOW))
        work.commit()


def test_a_deleted_network_takes_its_tasks_ratings_with_it(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    task = new_task(network)
    stored(uow, task)
    with uow(tenant) as work:
        work.ratings.put(Rating.create(task.id, 1, None, now=NOW))
        work.commit()

    with uow(tenant) as work:
        work.networks.delete(network.id)
        work.commit()

    with uow(tenant) as work:
        assert work.ratings.get(task.id) is None


def test_the_comment_is_sealed_in_the_record(database_url: str, tenant: str) -> None:
    with engine_clearing(database_url, tenant) as engine:
        rating = rated(SqlUnitOfWorkFactory(engine, Sealer.from_text(DATA_KEYS)), tenant)
        with tenancy.across_tenants(engine).connect() as db:
            stored_comment = db.execute(
                sa.text("SELECT comment FROM task_ratings WHERE task_id = :t"),
                {"t": rating.task_id},
            ).scalar_one()

    assert "price" not in stored_comment
    assert Sealer.from_text(DATA_KEYS).open(stored_comment) == "The price is wrong"
