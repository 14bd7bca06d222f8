"""Shared memory items, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import json_object, text
from meshcore.domain.confidence import ConfidenceSource
from meshcore.domain.memory import MAX_CONTENT, MemoryType


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


class MemoryItemSchema(ma.Schema):
    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    type = ma.fields.Enum(MemoryType, by_value=True)
    content = ma.fields.String()
    confidence = ma.fields.Float()
    metadata = ma.fields.Dict()
    created_at = ma.fields.DateTime()


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
