"""Field types and validators the resources' schemas share: bounded text and JSON, rounded
numbers, and counts the record keeps from 0 shown from 1."""

from __future__ import annotations

import math

import marshmallow as ma
from marshmallow import validate

MAX_JSON_DEPTH = 20
# Free-form JSON (context, metadata) within bounds a prompt and a row can hold; the body's
# 1 MiB bounds the whole.
MAX_JSON_KEYS = 100  # in any one object
MAX_JSON_ITEMS = 1000  # in any one list
MAX_JSON_TEXT = 20_000  # characters in any one string


def text(max_length: int, *, required: bool = False, **kwargs: object) -> ma.fields.String:
    """A string field that rejects empty, blank, oversized and NUL-bearing values."""
    return ma.fields.String(
        required=required,
        validate=[validate.Length(min=1, max=max_length), not_blank, no_nul],
        **kwargs,  # type: ignore[arg-type]
    )


def json_object(**kwargs: object) -> ma.fields.Dict:
    """A free-form JSON object (context, metadata) that Postgres' JSONB can store."""
    # A Length validator would be shown as maxLength, which means nothing for an object.
    metadata = {"maxProperties": MAX_JSON_KEYS, **kwargs.pop("metadata", {})}  # type: ignore[dict-item]
    return ma.fields.Dict(
        keys=ma.fields.String(validate=[validate.Length(1, 200), no_nul]),
        validate=storable_json,
        metadata=metadata,
        **kwargs,  # type: ignore[arg-type]
    )


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be empty or blank.")


def no_nul(value: str) -> None:
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")


def storable_json(value: object, depth: int = 0) -> None:
    """No NUL, NaN or Infinity (JSONB refuses them), no nesting past MAX_JSON_DEPTH, and no
    object, list or string past MAX_JSON_KEYS, MAX_JSON_ITEMS or MAX_JSON_TEXT."""
    if depth > MAX_JSON_DEPTH:
        raise ma.ValidationError(f"Must not nest deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        no_nul(value)
        if len(value) > MAX_JSON_TEXT:
            raise ma.ValidationError(f"Must hold no string longer than {MAX_JSON_TEXT} characters.")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ma.ValidationError("Must not contain NaN or Infinity.")
    elif isinstance(value, dict):
        if len(value) > MAX_JSON_KEYS:
            raise ma.ValidationError(f"Must have at most {MAX_JSON_KEYS} keys in any object.")
        for key, item in value.items():
            no_nul(str(key))
            storable_json(item, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_JSON_ITEMS:
            raise ma.ValidationError(f"Must hold no list longer than {MAX_JSON_ITEMS} items.")
        for item in value:
            storable_json(item, depth + 1)


class Rounded(ma.fields.Float):
    """A float shown to `places` decimals: a latency of 1.3984569999934138 ms reads 1.4."""

    def __init__(self, *, places: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.places = places

    def _serialize(self, value: object, attr: str | None, obj: object, **kwargs: object) -> object:
        shown = super()._serialize(value, attr, obj, **kwargs)
        return round(shown, self.places) if isinstance(shown, float) else shown


def shown_from_one(detail: dict[str, object]) -> dict[str, object]:
    """An event's detail with its waves (its own, and its plan's subtasks') counted from 1, as
    everything the API shows counts them; the record keeps them from 0."""
    shown = dict(detail)
    if isinstance(shown.get("wave"), int):
        shown["wave"] = shown["wave"] + 1  # type: ignore[operator]
    if isinstance(shown.get("subtasks"), list):
        shown["subtasks"] = [
            {**s, "wave": s["wave"] + 1} if isinstance(s, dict) and "wave" in s else s
            for s in shown["subtasks"]
        ]
    return shown


class Ordinal(ma.fields.Integer):
    """A count the record keeps from 0 (a wave), shown from 1 as iterations are."""

    def _serialize(self, value: object, attr: str | None, obj: object, **kwargs: object) -> object:
        return value + 1 if isinstance(value, int) else value
