from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from meshcore.domain import relevance
from meshcore.domain.memory import MemoryItem, MemoryType

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def item(
    content: str,
    *,
    days_old: float = 0,
    confidence: float = 0.9,
    type: MemoryType = MemoryType.FACT,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id="acme",
        network_id=uuid4(),
        type=type,
        content=content,
        confidence=confidence,
        now=NOW - timedelta(days=days_old),
    )


def test_terms_are_folded_split_and_stripped_of_stop_words() -> None:
    text = "The Launch of ORBIT's prices: $4.99 a month, for companies_and boxes"

    assert relevance.terms(text) == [
        "launch", "orbit", "price", "99", "month", "company", "box",
    ]  # fmt: skip


def test_terms_are_normalised_the_same_whatever_the_unicode_form() -> None:
    assert relevance.terms("Ｃａｆé ﬁles") == relevance.terms("café files") == ["café", "file"]


def test_plural_folding_leaves_words_that_only_end_in_s() -> None:
    assert relevance.terms("status analysis class bus") == ["status", "analysis", "class", "bus"]


def test_an_item_is_indexed_under_its_most_frequent_terms_and_its_whole_length() -> None:
    words = [f"word{n}" for n in range(relevance.MAX_ITEM_TERMS + 10)]
    text = " ".join(["orbit"] * 3 + words)

    counts, length = relevance.indexed_terms(text)

    assert counts["orbit"] == 3
    assert len(counts) == relevance.MAX_ITEM_TERMS
    assert length == 3 + len(words)


def test_a_subtasks_own_words_weigh_more_than_its_tasks() -> None:
    found = relevance.query_terms("Find Orbit's price", "Launch Orbit to teachers")

    assert found == {"launch": 0.5, "teacher": 0.5, "orbit": 1.0, "find": 1.0, "price": 1.0}


def test_term_frequency_saturates_and_long_items_weigh_less() -> None:
    once, twice, often = (relevance.tf_weight(n, 10, 10) for n in (1, 2, 50))

    assert once < twice < often < relevance.K1 + 1
    assert relevance.tf_weight(1, 40, 10) < once
    assert relevance.tf_weight(0, 10, 10) == 0


def test_a_rare_term_tells_more_than_a_common_one() -> None:
    assert relevance.idf(1000, 1) > relevance.idf(1000, 100) > relevance.idf(1000, 1000) > 0


def test_bm25_ranks_the_document_holding_the_rare_terms_first() -> None:
    documents = [
        relevance.terms("Orbit launch email for the spring"),
        relevance.terms("Orbit launch email for teachers, price $9"),
        relevance.terms("A note on spring colours"),
    ]

    scores = relevance.bm25(relevance.query_terms("teachers price"), documents)

    assert scores[1] > 0
    assert scores[0] == scores[2] == 0


def test_recency_halves_every_half_life() -> None:
    week = relevance.HALF_LIFE_SECONDS

    assert relevance.recency(0) == 1
    assert relevance.recency(week) == pytest.approx(0.5)
    assert relevance.recency(3 * week) == pytest.approx(0.125)
    assert relevance.recency(-60) == 1  # a clock behind the writer's


def test_a_score_is_its_parts_mixed_and_weighed_by_the_memory_type() -> None:
    critic = relevance.weights_for("critic")

    score = relevance.score(0.5, 0.8, relevance.HALF_LIFE_SECONDS, MemoryType.FEEDBACK, critic)

    assert (score.relevance, score.confidence, score.recency) == (0.5, 0.8, pytest.approx(0.5))
    mixed = relevance.RELEVANCE * 0.5 + relevance.CONFIDENCE * 0.8 + relevance.RECENCY * 0.5
    assert score.total == pytest.approx(critic[MemoryType.FEEDBACK] * mixed)
    assert score.type_weight == critic[MemoryType.FEEDBACK]


def test_each_built_in_type_weighs_what_its_work_needs_and_others_weigh_alike() -> None:
    critic, research = relevance.weights_for("critic"), relevance.weights_for("research")

    assert critic[MemoryType.FEEDBACK] > critic[MemoryType.FACT]
    assert critic[MemoryType.DECISION] > critic[MemoryType.CONTEXT]
    assert research[MemoryType.FACT] == max(research.values())
    assert set(relevance.weights_for("legal").values()) == {1.0}
    assert set(relevance.weights_for(None).values()) == {1.0}


def test_relevance_is_over_the_best_candidate_and_outweighs_a_newer_date() -> None:
    match = item("Orbit costs $9 for teachers", days_old=60)
    newer = item("Orbit launch", days_old=0)
    unrelated = item("Spring colours", days_old=0)

    candidates = [
        relevance.Candidate.of(newer, 1.5),
        relevance.Candidate.of(match, 6.0),
        relevance.Candidate.of(unrelated),
    ]

    ranked = relevance.scored(candidates, now_seconds=NOW.timestamp())

    assert [r.candidate.item for r in ranked] == [match, newer, unrelated]
    assert ranked[0].score.relevance == 1.0
    assert ranked[1].score.relevance == pytest.approx(0.25)


def test_with_no_match_confidence_and_recency_decide() -> None:
    old_sure = item("a", days_old=30, confidence=0.95)
    new_sure = item("b", days_old=0, confidence=0.95)
    new_unsure = item("c", days_old=0, confidence=0.5)

    candidates = [relevance.Candidate.of(i) for i in (old_sure, new_unsure, new_sure)]

    ranked = relevance.scored(candidates, now_seconds=NOW.timestamp())

    assert [r.candidate.item for r in ranked] == [new_sure, new_unsure, old_sure]
    assert all(r.score.relevance == 0 for r in ranked)


def test_the_budget_takes_items_in_order_while_they_fit_and_passes_over_one_too_big() -> None:
    small, big, other = item("x" * 400), item("y" * 4000), item("z" * 200)  # 100, 1000, 50

    assert relevance.within_budget([small, big, other], 200, 10) == [small, other]
    assert relevance.within_budget([small, big, other], 2000, 10) == [small, big, other]
    assert relevance.within_budget([small, big, other], 2000, 2) == [small, big]
    assert relevance.within_budget([small], 0, 10) == []


def test_the_budget_reads_no_item_past_the_last_it_takes() -> None:
    taken: list[MemoryItem] = []

    def lazily() -> Iterator[MemoryItem]:
        for content in ("x" * 40, "y" * 40, "z" * 40):
            taken.append(found := item(content))
            yield found

    assert len(relevance.within_budget(lazily(), 1000, 2)) == 2
    assert len(taken) == 2


def test_tokens_are_estimated_at_four_characters_each() -> None:
    assert relevance.estimate_tokens("x" * 8) == 2
    assert relevance.estimate_tokens("x" * 9) == 3
    assert relevance.estimate_tokens("") == 0
    assert math.isclose(relevance.CHARS_PER_TOKEN, 4)
