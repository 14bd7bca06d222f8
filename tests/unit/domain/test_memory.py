from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from meshcore.domain.errors import InvalidInput
from meshcore.domain.memory import MAX_CONTENT, MemoryItem, MemoryType

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def create(
    content: str = "Orbit ships on 3 March",
    confidence: float = 0.9,
    metadata: dict[str, object] | None = None,
) -> MemoryItem:
    return MemoryItem.create(
        tenant_id="acme",
        network_id=uuid4(),
        type=MemoryType.FACT,
        content=content,
        confidence=confidence,
        now=NOW,
        metadata=metadata,
    )


def test_an_item_keeps_what_it_was_given() -> None:
    item = create(metadata={"task_id": "t-1", "subtask": "research"})

    assert (item.type, item.content, item.confidence, item.created_at) == (
        MemoryType.FACT,
        "Orbit ships on 3 March",
        0.9,
        NOW,
    )
    assert (item.task_id, item.subtask) == ("t-1", "research")


def test_an_item_without_task_metadata_belongs_to_no_task() -> None:
    item = create()

    assert (item.task_id, item.subtask, item.metadata) == (None, None, {})


@pytest.mark.parametrize("content", ["", "  ", "\n"])
def test_empty_content_is_rejected(content: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        create(content)

    assert raised.value.field == "content"


def test_content_over_the_limit_is_rejected_and_at_it_is_accepted() -> None:
    assert len(create("x" * MAX_CONTENT).content) == MAX_CONTENT
    with pytest.raises(InvalidInput, match=f"at most {MAX_CONTENT}") as raised:
        create("x" * (MAX_CONTENT + 1))

    assert raised.value.field == "content"


@pytest.mark.parametrize("confidence", [-0.01, 1.01, 7.0])
def test_a_confidence_outside_zero_to_one_is_rejected(confidence: float) -> None:
    with pytest.raises(InvalidInput) as raised:
        create(confidence=confidence)

    assert raised.value.field == "confidence"


@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_a_confidence_at_either_end_is_accepted(confidence: float) -> None:
    assert create(confidence=confidence).confidence == confidence


def test_the_item_does_not_share_the_callers_metadata() -> None:
    metadata: dict[str, object] = {"tags": "launch"}
    item = create(metadata=metadata)

    metadata["tags"] = "changed"

    assert item.metadata == {"tags": "launch"}
