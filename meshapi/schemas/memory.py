"""Shared memory items, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import json_object, no_nul, text
from meshcore.domain.agent_types import NAME_PATTERN
from meshcore.domain.confidence import ConfidenceSource
from meshcore.domain.memory import MAX_CONTENT, MemoryType
from meshcore.domain.relevance import Ranked

MAX_QUERY_TEXT = 2000


class MemoryCreateSchema(ma.Schema):
    type = ma.fields.Enum(MemoryType, by_value=True, required=True)
    content = text(MAX_CONTENT, required=True)
    confidence = ma.fields.Float(validate=validate.Range(0, 1), load_default=1.0)
    metadata = json_object(load_default=dict)


# What the docs UI fills a new item in with; it must succeed as sent (a test posts it).
MEMORY_EXAMPLE = {
    "type": "fact",
    "content": "Orbit launches on 12 May at $4.99 a month",
    "confidence": 0.9,
    "metadata": {"source": "product brief"},
}


class MemoryQueryArgsSchema(ma.Schema):
    type = ma.fields.List(
        ma.fields.Enum(MemoryType, by_value=True),
        metadata={"description": "Repeat to ask for several types"},
    )
    min_confidence = ma.fields.Float(validate=validate.Range(0, 1), load_default=0.0)
    task_id = ma.fields.UUID()
    task = ma.fields.UUID(metadata={"description": "The same as `task_id`"})
    limit = ma.fields.Integer(
        validate=validate.Range(1, 100),
        metadata={"description": "The same as `page_size`: at most this many items"},
    )
    q = ma.fields.String(
        validate=[validate.Length(1, MAX_QUERY_TEXT), no_nul],
        metadata={"description": "Text to rank items by (BM25 over their terms, with their "
                  "confidence and recency): only items holding one of its words, best first, "
                  "the best 100 at most; each item then carries its `score`"},
    )  # fmt: skip
    agent = ma.fields.String(
        validate=validate.Regexp(NAME_PATTERN, error="must be an agent type's name"),
        metadata={"description": "An agent type: rank as its steps do, with its weights per "
                  "memory type, among the types it reads unless `type` is given; without "
                  "`q`, the newest 100 items ranked by confidence and recency"},
    )  # fmt: skip


class MemoryItemSchema(ma.Schema):
    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    type = ma.fields.Enum(MemoryType, by_value=True)
    content = ma.fields.String()
    confidence = ma.fields.Float()
    metadata = ma.fields.Dict()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When its type's time to live (config.memory.ttl_seconds) "
                  "ends it; null: it lasts (a context item of a task still ends with the "
                  "task unless promoted)"},
    )  # fmt: skip
    promoted_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When it was promoted to last (POST .../promote); null if not"},
    )
    contradicts = ma.fields.List(
        ma.fields.UUID(),
        metadata={"description": "The decisions of the network this one contradicts (the same "
                  "subject, the opposite stance), oldest link first; empty if none"},
    )  # fmt: skip
    score = ma.fields.Float(
        dump_only=True,
        metadata={"description": "With `q` or `agent` only: type_weight x (0.6 relevance + "
                  "0.25 confidence + 0.15 recency)"},
    )  # fmt: skip
    score_parts = ma.fields.Nested(
        lambda: ScorePartsSchema(), dump_only=True,
        metadata={"description": "With `q` or `agent` only: what the score is made of"},
    )  # fmt: skip

    @ma.pre_dump
    def _flatten(self, data: object, **kwargs: object) -> object:
        if isinstance(data, Ranked):
            return {**vars(data.item), "score": data.score.total, "score_parts": data.score}
        return data


class ScorePartsSchema(ma.Schema):
    relevance = ma.fields.Float(
        metadata={"description": "BM25 relevance to `q`, over the best item's: 0 to 1"}
    )
    confidence = ma.fields.Float(metadata={"description": "The item's confidence"})
    recency = ma.fields.Float(metadata={"description": "1 new, halving every 7 days of age"})
    type_weight = ma.fields.Float(
        metadata={"description": "The agent type's weight for the item's memory type"}
    )


class ConfidenceChangeSchema(ma.Schema):
    before = ma.fields.Float()
    after = ma.fields.Float()
    source = ma.fields.Enum(
        ConfidenceSource,
        by_value=True,
        metadata={"description": "Whose verdict: the critic's, a client's rating, a merge"},
    )
    reason = ma.fields.String(metadata={"description": "Why, in Mesh's words"})
    task_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "The task whose verdict it was, if any"}
    )
    at = ma.fields.DateTime()


class ConfidenceHistorySchema(ma.Schema):
    item_id = ma.fields.UUID()
    confidence = ma.fields.Float(metadata={"description": "The item's confidence now"})
    changes = ma.fields.List(
        ma.fields.Nested(ConfidenceChangeSchema),
        metadata={"description": "Every change to the confidence, oldest first"},
    )
