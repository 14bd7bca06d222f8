"""The memory repository's restatements and links, on Postgres, on a SQLite file (the
embedded default's record) and on the fakes the unit tests run on: one contract for all."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from meshcore.domain.errors import NotFound
from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.network import Network
from meshcore.ports import UnitOfWorkFactory
from tests.integration.contract import NOW, stored_network
from tests.integration.contract import tenant as tenant
from tests.integration.contract import uow as uow

# Each test on the fakes, on Postgres and on a SQLite file: the records `uow` knows by name.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("uow", ["fake", "postgres", "sqlite"], indirect=True),
]

FACT, DECISION, CONTEXT = MemoryType.FACT, MemoryType.DECISION, MemoryType.CONTEXT


def item(
    network: Network,
    content: str,
    type: MemoryType = FACT,
    *,
    seconds: int = 0,
    metadata: dict[str, object] | None = None,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id=network.tenant_id, network_id=network.id, type=type, content=content,
        confidence=0.7, now=NOW + timedelta(seconds=seconds), metadata=metadata,
    )  # fmt: skip


def admitted(uow: UnitOfWorkFactory, tenant: str, *items: MemoryItem) -> list[UUID | None]:
    with uow(tenant) as work:
        found = [work.memory.admit(i) for i in items]
        work.commit()
    return found


def test_an_item_goes_in_unless_it_restates_one_then_that_ones_id_comes_back(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    first = item(network, "Orbit ships on 12 May.")

    assert admitted(uow, tenant, first) == [None]
    again = item(network, "orbit ships on 12 may", seconds=1)
    with uow(tenant) as work:
        assert work.memory.restated(again) == first.id
        assert work.memory.admit(again) == first.id
        work.commit()
    with uow(tenant) as work:
        assert work.memory.get(network.id, first.id) == first
        with pytest.raises(NotFound):
            work.memory.get(network.id, again.id)


def test_other_types_networks_and_words_are_new_items(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network, other = stored_network(uow, tenant), stored_network(uow, tenant)
    admitted(uow, tenant, item(network, "Lead with the price"))

    found = admitted(
        uow,
        tenant,
        item(network, "Lead with the price", DECISION),
        item(other, "Lead with the price"),
        item(network, "Lead with the offer"),
        item(network, "Audience: developers", CONTEXT),
        item(network, "Audience: developers", CONTEXT),
    )

    assert found == [None] * 5
    with uow(tenant) as work:
        assert work.memory.restated(item(network, "Audience: developers", CONTEXT)) is None


def test_another_tenants_item_is_never_restated(uow: UnitOfWorkFactory, tenant: str) -> None:
    network = stored_network(uow, tenant)
    admitted(uow, tenant, item(network, "Orbit ships in May"))
    rival = f"{tenant}-rival"

    with uow(rival) as work:
        theirs = replace(item(network, "Orbit ships in May"), tenant_id=rival)
        assert work.memory.restated(theirs) is None


def test_decisions_on_one_subject_are_candidates_and_links_read_both_ways(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    send = item(network, "Send on Tuesday", DECISION)
    thursday = item(network, "Send on Thursday", DECISION, seconds=1)
    fact = item(network, "Never send on Tuesday", seconds=2)
    never = item(network, "Never send on Tuesday", DECISION, seconds=3)
    admitted(uow, tenant, send, thursday, fact, never)

    with uow(tenant) as work:
        candidates = work.memory.same_subject(item(network, "Don't send on Tuesday", DECISION))
        work.memory.link_contradictions(never.id, [send.id], at=NOW)
        work.memory.link_contradictions(never.id, [send.id], at=NOW)  # once is enough
        work.commit()

    assert [c.id for c in candidates] == [never.id, send.id]  # newest first
    with uow(tenant) as work:
        assert work.memory.contradictions([send.id, never.id, thursday.id]) == {
            send.id: (never.id,),
            never.id: (send.id,),
        }
    with uow(f"{tenant}-rival") as work:
        assert work.memory.contradictions([send.id, never.id]) == {}


def test_a_step_output_that_restated_an_item_is_read_as_that_steps_output(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    holder = item(network, "Orbit ships in May", metadata={"source": "brief"})
    task_id, agent_id = uuid4(), uuid4()
    step = {"source_agent": "research", "agent_id": str(agent_id), "task_id": str(task_id)}
    output = item(
        network, "orbit ships in may", seconds=5, metadata={**step, "subtask": "facts",
                                                            "iteration": 2},
    )  # fmt: skip
    admitted(uow, tenant, holder)

    with uow(tenant) as work:
        work.memory.note_restatement(output, holder.id)
        work.memory.note_restatement(output, holder.id)  # a replay notes nothing again
        work.commit()

    with uow(tenant) as work:
        (shown,) = work.memory.restatements(network.id, task_id, ["facts", "copy"])
        assert work.memory.restatements(network.id, task_id, ["copy"]) == []
        assert work.memory.restatements(network.id, uuid4(), ["facts"]) == []
    assert (shown.id, shown.content, shown.confidence) == (holder.id, holder.content, 0.7)
    assert shown.metadata == {"source": "brief", **step, "subtask": "facts", "iteration": 2}


def test_a_renewal_only_puts_an_expiry_off_and_leaves_what_lasts_and_others_alone(
    uow: UnitOfWorkFactory, tenant: str
) -> None:
    network = stored_network(uow, tenant)
    hour, later = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    expiring = replace(item(network, "The sale ends Friday"), expires_at=hour)
    lasting = item(network, "Orbit ships in May")
    admitted(uow, tenant, expiring, lasting)

    with uow(tenant) as work:
        work.lifetimes.renew(network.id, expiring.id, until=later)
        work.lifetimes.renew(network.id, lasting.id, until=later)
        work.commit()
    with uow(f"{tenant}-rival") as work:  # another tenant's renewal reaches nothing
        work.lifetimes.renew(network.id, expiring.id, until=later + timedelta(hours=1))
        work.commit()
    with uow(tenant) as work:
        work.lifetimes.renew(network.id, expiring.id, until=hour)  # never brought forward
        work.commit()

    with uow(tenant) as work:
        assert work.memory.get(network.id, expiring.id).expires_at == later
        assert work.memory.get(network.id, lasting.id).expires_at is None
