"""Answers a type asks for as JSON: the schema checked when the type is saved, and each answer
checked against it, like the coordinator's plan and the critic's verdict."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from meshcore.agents.profile import json_part
from meshcore.domain.errors import InvalidInput


class InvalidAnswer(ValueError):
    """An answer that is not JSON satisfying the type's schema (the model chain retries once)."""


def check_schema(schema: dict[str, object]) -> None:
    """Refuse an answer schema that is not a JSON Schema (draft 2020-12)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput("answer", f"is not a JSON Schema: {exc.message}") from exc


def read_answer(schema: dict[str, object], text: str) -> dict[str, object]:
    """The JSON object a model's answer holds, checked against `schema`, or InvalidAnswer."""
    try:
        data = json.loads(json_part(text))
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"the answer is not JSON: {exc.msg}") from exc
    error = next(iter(Draft202012Validator(schema).iter_errors(data)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        raise InvalidAnswer(f"{where}: {error.message}")
    return data
