"""A client's rating of a finished task, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import text
from meshcore.domain.rating import MAX_COMMENT, MAX_SCORE, MIN_SCORE


class RatingCreateSchema(ma.Schema):
    # strict: 4.5, "4" and true are no score (a non-strict field reads 4.0 and "4" as 4).
    score = ma.fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(MIN_SCORE, MAX_SCORE),
        metadata={"description": "From 1 (poor) to 5 (excellent)"},
    )
    comment = text(
        MAX_COMMENT,
        allow_none=True,
        load_default=None,
        metadata={
            "description": "Optional: what was good or bad; rating again without one clears it"
        },
    )


# What the docs UI fills a new rating in with; it must succeed as sent (a test posts it).
RATING_EXAMPLE = {"score": 5, "comment": "Ready to send as it was: clear and on brand"}


class RatingSchema(ma.Schema):
    task_id = ma.fields.UUID()
    score = ma.fields.Integer()
    comment = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(metadata={"description": "When the task was first rated"})
    updated_at = ma.fields.DateTime(metadata={"description": "When the rating last changed"})
