"""What the API answers about memory items, as the client's and the CLI's tests script it."""

from __future__ import annotations

from typing import Any

from tests.client.fakes import NETWORK_ID, TASK_ID

ITEM_ID = "3f1d2c4b-0000-4000-8000-0000000000c1"
OTHER_ID = "3f1d2c4b-0000-4000-8000-0000000000c2"
MEMORY_PATH = f"/api/mesh/networks/{NETWORK_ID}/memory"
WHEN = "2026-12-07T10:00:00+00:00"
PRICE = "Orbit's price is $9 a month for teachers"

# Two changes of an item's confidence: a critic's verdict, then a client's rating.
CRITIC = {
    "before": 0.5,
    "after": 0.6,
    "source": "critic",
    "reason": "the critic passed the answer that used it",
    "task_id": TASK_ID,
    "at": "2026-12-07T10:00:01+00:00",
}
RATING = {
    "before": 0.6,
    "after": 0.58,
    "source": "rating",
    "reason": "client rated task 2/5",
    "task_id": None,
    "at": "2026-12-07T10:00:02+00:00",
}


def item(item_id: str = ITEM_ID, **fields: object) -> Any:
    return {
        "id": item_id,
        "network_id": NETWORK_ID,
        "type": "fact",
        "content": PRICE,
        "confidence": 0.9,
        "metadata": {},
        "created_at": WHEN,
        "contradicts": [],
        "expires_at": None,
        "promoted_at": None,
        **fields,
    }


def scored(item_id: str, score: float, relevance: float, **fields: object) -> Any:
    """An item as a ranked list answers it: with its score and the parts of it."""
    parts = {"relevance": relevance, "confidence": 0.9, "recency": 1.0, "type_weight": 1.0}
    return item(item_id, score=score, score_parts=parts, **fields)


def history(*changes: dict[str, object]) -> Any:
    return {"item_id": ITEM_ID, "confidence": 0.58, "changes": list(changes)}
