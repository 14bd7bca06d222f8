"""What a reader gets of shared memory: items ranked by relevance, confidence and recency.

A step's reader is its agent: it looks for its subtask's and its task's terms among the memory
types its role reads, above the confidence floor, and takes the best-ranked items while they
fit its token budget (MESH_MEMORY_TOKEN_BUDGET, or its type's `memory_tokens`). The newest
items compete beside the text's matches, scored with no relevance: with no match at all a
step still gets the confident, recent context it had before ranking. A client's reader is
`GET /memory?q=...&agent=...`: the matches of `q` only (or, with an agent and no `q`, the
newest items), ranked for that agent type.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from meshcore.domain import relevance
from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.domain.relevance import Candidate, Ranked, Scored
from meshcore.ports import Clock, UnitOfWorkFactory
from meshcore.services.agent_types import catalog_of
from meshcore.services.memory_view import MemoryView

# How many of the most relevant items are ranked: a client pages through these; a step keeps
# a few dozen at most, and ranks fewer (reading and scoring candidates is most of its cost).
POOL = 100
STEP_POOL = 50
# Ranked items are opened (loaded and unsealed) this many at a time, as a reader takes them:
# unsealing is most of a read's cost, and a step keeps only the first few.
OPEN_BATCH = 20


class Retrieval:
    def __init__(self, view: MemoryView, clock: Clock) -> None:
        self._view, self._clock = view, clock

    def rank(
        self,
        network_id: UUID,
        query: MemoryQuery,
        *,
        terms: Mapping[str, float],
        weights: Mapping[MemoryType, float] = relevance.NEUTRAL,
        newest: int = 0,
        pool: int = POOL,
    ) -> list[Scored]:
        """The query's items that hold the terms (the `pool` most relevant) and its `newest`
        items, best first, still sealed (`opened` opens them)."""
        found = {c.id: c for c in self._view.search(network_id, terms, query, pool=pool)}
        if newest:
            for item in self._view.query(network_id, replace(query, limit=newest, offset=0)):
                found.setdefault(item.id, Candidate.of(item))
        now = self._clock.now().timestamp()
        return relevance.scored(list(found.values()), now_seconds=now, weights=weights)

    def now(self) -> datetime:
        return self._clock.now()

    def opened(self, network_id: UUID, ranked: Sequence[Scored]) -> Iterator[Ranked]:
        """The ranked items in order, opened a batch at a time as the caller goes on; one
        removed meanwhile is left out."""
        for start in range(0, len(ranked), OPEN_BATCH):
            batch = ranked[start : start + OPEN_BATCH]
            wanted = [s.candidate.id for s in batch if s.candidate.item is None]
            loaded = {i.id: i for i in self._view.load(network_id, wanted)} if wanted else {}
            for s in batch:
                if (item := s.candidate.item or loaded.get(s.candidate.id)) is not None:
                    yield Ranked(item, s.score)


@dataclass(frozen=True)
class StepMemory:
    """What a step reads of shared memory besides the work it builds on."""

    retrieval: Retrieval
    min_confidence: float = 0.5
    limit: int = 20  # items at most, whatever the budget
    tokens: int = 2000  # MESH_MEMORY_TOKEN_BUDGET

    def read(
        self,
        network_id: UUID,
        *,
        agent_type: str,
        reads: tuple[MemoryType, ...],
        subtask: str,
        task: str,
        tokens: int | None = None,
        exclude: Collection[UUID] = (),
    ) -> list[MemoryItem]:
        """The best-ranked items for the subtask while they fit the budget (`tokens`, the
        agent type's own, or the setting's)."""
        budget = self.tokens if tokens is None else tokens
        if budget <= 0 or not reads:
            return []
        ranked = self.retrieval.rank(
            network_id,
            MemoryQuery(reads, self.min_confidence, self.limit),
            terms=relevance.query_terms(subtask, task),
            weights=relevance.weights_for(agent_type),
            newest=self.limit,
            pool=STEP_POOL,
        )
        ranked = [s for s in ranked if s.candidate.id not in exclude]
        # What outlived its lifetime is not read, though the sweep has yet to delete it.
        now = self.retrieval.now()
        opened = (
            r.item
            for r in self.retrieval.opened(network_id, ranked)
            if not r.item.has_expired(now)
        )
        return relevance.within_budget(opened, budget, self.limit)


def for_client(
    retrieval: Retrieval,
    uow: UnitOfWorkFactory,
    tenant_id: str,
    network_id: UUID,
    query: MemoryQuery,
    *,
    text: str | None,
    agent: str | None,
    types_given: bool,
) -> list[Scored]:
    """`GET /memory` with `q` or `agent`: the matches of the text (or, without one, the POOL
    newest items), ranked with the agent type's weights; its `reads` are the types unless
    the client named some."""
    weights = relevance.NEUTRAL
    if agent is not None:
        definition = catalog_of(uow, tenant_id, [agent]).get(agent)
        if definition is None:
            raise InvalidInput("agent", f"no agent type is named {agent!r}")
        weights = relevance.weights_for(agent)
        if not types_given:
            query = replace(query, types=definition.reads)
    query = replace(query, offset=0, limit=POOL)
    if text is None:
        return retrieval.rank(network_id, query, terms={}, weights=weights, newest=POOL)
    terms = relevance.query_terms(text)
    return retrieval.rank(network_id, query, terms=terms, weights=weights)
