"""What a task or a network has spent."""

from __future__ import annotations

import marshmallow as ma


class UsageSchema(ma.Schema):
    input_tokens = ma.fields.Integer()
    output_tokens = ma.fields.Integer()
    cost_usd = ma.fields.Float()
