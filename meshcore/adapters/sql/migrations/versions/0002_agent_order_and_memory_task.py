"""Keep agents in the order they were added; index memory items by task.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("memory_items") as batch:
        batch.add_column(sa.Column("task_id", sa.Uuid(), nullable=True))
    op.create_index("ix_memory_task", "memory_items", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_memory_task", table_name="memory_items")
    with op.batch_alter_table("memory_items") as batch:
        batch.drop_column("task_id")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("position")
