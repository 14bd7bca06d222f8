"""What every table's row shaping shares.

Each aggregate's rows are shaped in one module, with the statements that select them:
network_rows.py (a network and its agents), task_rows.py (a task, its event log and its
plans' subtasks), steps.py, memory_rows.py; keys.py, agent_types.py, tool_calls.py,
webhooks.py and ratings.py shape their own.

Content (a task's words, context, plan, result and error; a step's output and error; a
subtask's description; a history line's detail; a memory item's content and metadata; a
rating's comment) is sealed on the way in and opened on the way out; ids, statuses, times
and counters stay clear for queries and indexes. A JSON column holds its sealed value as a
JSON string (the token): the columns keep their types, so no migration is needed, and rows
written before sealing (JSON objects) still read.

The statements every step runs are built once, with bind parameters: building a SQLAlchemy
statement and deriving its cache key cost more CPU than Postgres spends running one of these
(about 70 of 130 microseconds, measured). Their parameters start with "p_": bare column
names are SQLAlchemy's own for INSERT and UPDATE values. Statements that run seldom are built
where they are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

Row = Mapping[str, Any]


def aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def maybe_aware(value: datetime | None) -> datetime | None:
    """`aware` for a column that may be NULL."""
    return aware(value) if value is not None else None


def labelled(table: sa.Table, prefix: str) -> list[sa.Label[Any]]:
    """The table's columns, each named `prefix` + its name: the second table of a join,
    whose column names would clash with the first's."""
    return [c.label(f"{prefix}{c.name}") for c in table.c]


def unlabelled(row: Row, table: sa.Table, prefix: str) -> dict[str, Any]:
    """The part of a joined row that `labelled(table, prefix)` selected, under its own names."""
    return {c.name: row[f"{prefix}{c.name}"] for c in table.c}
