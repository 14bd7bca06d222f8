"""What counts as saying again what an item says: the same words, once normalised."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.domain.memory import MemoryItem, MemoryType
from meshcore.domain.restatement import (
    as_output,
    merge_reason,
    merge_signal,
    merges,
    normalised,
    restater,
    restates,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)
NETWORK = uuid4()


def item(
    content: str,
    type: MemoryType = MemoryType.FACT,
    *,
    network_id: object = NETWORK,
    tenant_id: str = "acme",
    confidence: float = 0.8,
    metadata: dict[str, object] | None = None,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id=tenant_id, network_id=network_id, type=type, content=content,  # type: ignore[arg-type]
        confidence=confidence, now=NOW, metadata=metadata,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Orbit ships on 12 May.", "orbit ships on 12 may"),
        ("  ORBIT\tships   on\n12 May!!", "orbit ships on 12 may"),
        ("Orbit costs $4.99 a month", "orbit costs $4.99 a month"),
        ("Send at 12:30, not later", "send at 12:30 not later"),
        ("Don't send on Tuesday", "do not send on tuesday"),
        ("Don\u2019t send on Tuesday", "do not send on tuesday"),
        ("dont send on tuesday", "do not send on tuesday"),
        ("It can't wait; it won't", "it can not wait it will not"),
        # NFKC: full-width letters and the fi ligature
        ("\uff2f\uff52\uff42\uff49\uff54 \ufb01ts", "orbit fits"),
        ("Straße", "strasse"),  # case-folded, not only lower-cased
        ("e-mail, re_use", "e mail re use"),
    ],
)
def test_normalised_text_drops_case_spacing_punctuation_and_contractions(
    text: str, expected: str
) -> None:
    assert normalised(text) == expected


def test_symbols_and_numbers_stay_what_they_are() -> None:
    assert normalised("costs $5") != normalised("costs €5")
    assert normalised("costs 4.99") != normalised("costs 499")
    assert normalised("up 5%") != normalised("up 5")
    assert normalised("fell to -5") != normalised("fell to 5")
    assert normalised("covid-19 rules") == "covid 19 rules"


def test_facts_and_decisions_merge_context_and_feedback_do_not() -> None:
    assert [t for t in MemoryType if merges(t)] == [MemoryType.FACT, MemoryType.DECISION]


def test_an_item_restates_one_of_its_network_and_type_with_the_same_normalised_text() -> None:
    first = item("Orbit ships on 12 May")

    assert restates(item("orbit ships on 12 may."), first)
    assert not restates(item("Orbit ships on 13 May"), first)
    assert not restates(item("Orbit ships on 12 May", MemoryType.DECISION), first)
    assert not restates(item("Orbit ships on 12 May", network_id=uuid4()), first)
    assert not restates(item("Orbit ships on 12 May", tenant_id="rival"), first)


def test_context_said_twice_is_two_items() -> None:
    brief = item("Audience: developers", MemoryType.CONTEXT)

    assert not restates(item("Audience: developers", MemoryType.CONTEXT), brief)


def test_a_restatement_counts_as_strongly_as_the_restater_believed_it() -> None:
    assert merge_signal(item("x", confidence=0.3)) == 0.3
    assert merge_signal(item("x", confidence=1.0)) == 1.0


def test_the_reason_names_who_restated_it_and_in_which_task() -> None:
    by_agent = item("x", metadata={"source_agent": "research", "task_id": "t-1"})

    assert restater(by_agent) == "the research agent"
    assert restater(item("x")) == "a client"
    assert merge_reason("the research agent", "t-1") == "restated by the research agent in task t-1"
    assert merge_reason("a client", None) == "restated by a client"


def test_a_step_output_held_by_another_item_reads_as_that_steps_output() -> None:
    holder = item("Orbit ships in May", metadata={"source": "brief", "task_id": "t-0"})

    shown = as_output(
        holder, source_agent="research", agent_id=None, task_id="t-1", subtask="facts",
        iteration=2,
    )  # fmt: skip

    assert (shown.id, shown.content, shown.confidence) == (
        holder.id, holder.content, holder.confidence,
    )  # fmt: skip
    assert shown.metadata == {
        "source": "brief", "source_agent": "research", "agent_id": None, "task_id": "t-1",
        "subtask": "facts", "iteration": 2,
    }  # fmt: skip
    assert (shown.task_id, shown.subtask) == ("t-1", "facts")
