"""How shared memory is ranked for a reader: relevance to its text, confidence and recency.

Relevance is BM25 (Robertson's ranking function) over normalised terms: each term an item
holds weighs idf x tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)), and an item's raw
relevance is the sum over the query's terms, each also weighted by how much it matters to
the query (a subtask's own words count more than its task's). The Redis index
(adapters/redis_terms.py) computes it for the candidates its postings point to; `bm25` here
is the same formula over texts in hand (the record's newest, while Redis is down).

The score a reader sees is type_weight x (0.6 relevance + 0.25 confidence + 0.15 recency),
every part in [0, 1]: relevance divided by the best candidate's, recency halving every week
of age, and the weight of the item's memory type for the agent type reading it (a critic
weighs feedback and decisions, research weighs facts).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from meshcore.domain.memory import MemoryItem, MemoryType

K1, B = 1.2, 0.75
# The length an index orders its postings against: a fixed pivot, so that an item's place in
# a term's list depends on the item alone (its score uses the network's average length).
PIVOT_LENGTH = 32
# A long item is indexed under its most frequent terms only: they say what it is about, and
# the index stays bounded (every term of every item is an entry in Redis).
MAX_ITEM_TERMS = 64
# A query keeps its most telling terms: a long task description would otherwise cost a read
# of every term's postings for words that barely move the ranking.
MAX_QUERY_TERMS = 16
SUBTASK_WEIGHT, TASK_WEIGHT = 1.0, 0.5
RELEVANCE, CONFIDENCE, RECENCY = 0.6, 0.25, 0.15
HALF_LIFE_SECONDS = 7 * 86_400.0
# What a prompt's item costs, in tokens: a rough 4 characters a token (English text on the
# common tokenizers), which is what a budget needs, not an exact count.
CHARS_PER_TOKEN = 4

_WORD = re.compile(r"[^\W_]+")
# Words that tell nothing about a text: English function words, too common to rank by.
_STOP_WORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours"""
STOP_WORDS = frozenset(_STOP_WORDS.split())

NEUTRAL: Mapping[MemoryType, float] = dict.fromkeys(MemoryType, 1.0)
# What each built-in agent type makes most of; a type not listed (a tenant's own) weighs
# every memory type alike, and reads only the types its definition names anyway.
TYPE_WEIGHTS: Mapping[str, Mapping[MemoryType, float]] = {
    "coordinator": {**NEUTRAL, MemoryType.DECISION: 1.3, MemoryType.FEEDBACK: 1.2},
    "critic": {**NEUTRAL, MemoryType.FEEDBACK: 1.5, MemoryType.DECISION: 1.4},
    "research": {**NEUTRAL, MemoryType.FACT: 1.5, MemoryType.CONTEXT: 1.1},
    "analytics": {**NEUTRAL, MemoryType.FACT: 1.3, MemoryType.CONTEXT: 1.1},
    "content": {**NEUTRAL, MemoryType.FEEDBACK: 1.3, MemoryType.DECISION: 1.2},
    "design": {**NEUTRAL, MemoryType.FEEDBACK: 1.3, MemoryType.DECISION: 1.2},
    "personalization": {**NEUTRAL, MemoryType.CONTEXT: 1.4, MemoryType.FACT: 1.1},
}


def weights_for(agent_type: str | None) -> Mapping[MemoryType, float]:
    """The memory-type weights of an agent type: a built-in's own, neutral for any other."""
    return TYPE_WEIGHTS.get(agent_type or "", NEUTRAL)


def terms(text: str) -> list[str]:
    """The text's terms in order: NFKC, case-folded, split on what is not a letter or digit,
    without stop words and one-character tokens, plural endings folded."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return [_singular(w) for w in words if len(w) > 1 and w not in STOP_WORDS]


def _singular(word: str) -> str:
    """A light fold of English plurals, so "prices" finds "price" (no stemmer: "pricing"
    stays apart, which costs recall, never a wrong match between unrelated words)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def indexed_terms(text: str) -> tuple[dict[str, int], int]:
    """What the index keeps of a text: its most frequent terms with their counts, and its
    length in terms (all of them, for length normalisation)."""
    found = terms(text)
    counted = Counter(found).most_common(MAX_ITEM_TERMS)  # ties keep first occurrence
    return dict(counted), len(found)


def query_terms(subtask: str, task: str = "") -> dict[str, float]:
    """The terms a reader looks for, each with its weight: the subtask's, then its task's."""
    found = dict.fromkeys(terms(task), TASK_WEIGHT)
    found.update(dict.fromkeys(terms(subtask), SUBTASK_WEIGHT))
    return found


def tf_weight(count: int, length: int, average_length: float) -> float:
    """BM25's term-frequency part: saturating in the count, normalised by the length."""
    if count <= 0:
        return 0.0
    norm = 1 - B + B * length / max(average_length, 1.0)
    return count * (K1 + 1) / (count + K1 * norm)


def idf(documents: int, holding: int) -> float:
    """BM25's inverse document frequency (the +1 form: never negative)."""
    holding = min(max(holding, 0), documents)
    return math.log(1 + (documents - holding + 0.5) / (holding + 0.5))


def bm25(query: Mapping[str, float], documents: Sequence[Sequence[str]]) -> list[float]:
    """Each document's BM25 score for the query, over these documents alone."""
    if not documents:
        return []
    counts = [Counter(d) for d in documents]
    average = sum(len(d) for d in documents) / len(documents)
    holding = Counter(t for c in counts for t in c if t in query)
    scores = []
    for doc, count in zip(documents, counts, strict=True):
        scores.append(
            sum(
                weight * idf(len(documents), holding[t]) * tf_weight(count[t], len(doc), average)
                for t, weight in query.items()
                if count[t]
            )
        )
    return scores


def recency(age_seconds: float, half_life_seconds: float = HALF_LIFE_SECONDS) -> float:
    """1 for an item written now, halving every half-life (an item from the future is new)."""
    return 0.5 ** (max(age_seconds, 0.0) / half_life_seconds)


@dataclass(frozen=True)
class Score:
    """An item's score for one reader, and the parts it is made of, each in [0, 1]."""

    total: float
    relevance: float
    confidence: float
    recency: float
    type_weight: float = 1.0


def score(
    relevance: float,
    confidence: float,
    age_seconds: float,
    memory_type: MemoryType,
    weights: Mapping[MemoryType, float] = NEUTRAL,
) -> Score:
    """Combine the parts: `relevance` already normalised against the best candidate."""
    parts = (
        min(max(relevance, 0.0), 1.0),
        min(max(confidence, 0.0), 1.0),
        recency(age_seconds),
    )
    weight = weights.get(memory_type, 1.0)
    mixed = RELEVANCE * parts[0] + CONFIDENCE * parts[1] + RECENCY * parts[2]
    return Score(weight * mixed, *parts, type_weight=weight)


@dataclass(frozen=True)
class Candidate:
    """An item as ranking sees it: what it is, how sure, how old and how relevant (raw BM25,
    0 for no match). Its content is opened only once it is chosen, unless it already was."""

    id: UUID
    type: MemoryType
    confidence: float
    created_at: datetime
    relevance: float = 0.0
    item: MemoryItem | None = None

    @classmethod
    def of(cls, item: MemoryItem, relevance: float = 0.0) -> Candidate:
        return cls(item.id, item.type, item.confidence, item.created_at, relevance, item)


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: Score


@dataclass(frozen=True)
class Ranked:
    """An item chosen for a reader, with its score."""

    item: MemoryItem
    score: Score


def scored(
    candidates: Sequence[Candidate],
    *,
    now_seconds: float,
    weights: Mapping[MemoryType, float] = NEUTRAL,
) -> list[Scored]:
    """The candidates scored, best first; ties go to the newer."""
    best = max((c.relevance for c in candidates), default=0.0)
    found = [
        Scored(
            c,
            score(
                c.relevance / best if best > 0 else 0.0,
                c.confidence,
                now_seconds - c.created_at.timestamp(),
                c.type,
                weights,
            ),
        )
        for c in candidates
    ]
    return sorted(found, key=lambda s: (-s.score.total, -s.candidate.created_at.timestamp()))


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def within_budget(items: Iterable[MemoryItem], tokens: int, limit: int) -> list[MemoryItem]:
    """The items, in order, while they fit: at most `limit`, their estimated tokens summing
    to at most `tokens`. An item too big for what is left is passed over, not cut: a smaller
    one after it may still fit. Reads no further than it needs (`items` may be lazy)."""
    chosen: list[MemoryItem] = []
    left = tokens
    if limit <= 0 or left <= 0:
        return chosen
    for item in items:
        cost = estimate_tokens(item.content)
        if cost <= left:
            chosen.append(item)
            left -= cost
            if len(chosen) == limit or left == 0:
                break
    return chosen
