"""Widen the task status columns: "awaiting_approval" has 17 characters.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = (("tasks", "status"), ("task_events", "status"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite does not enforce a VARCHAR's length
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(32), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.String(16), existing_nullable=False)
