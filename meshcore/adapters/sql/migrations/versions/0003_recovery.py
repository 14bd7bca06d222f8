"""What recovery needs: a task's current wave and heartbeat, and an attempt count per step.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("wave", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("held", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.execute("UPDATE tasks SET heartbeat_at = updated_at")
    op.create_index("ix_tasks_heartbeat", "tasks", ["status", "heartbeat_at"], unique=False)
    op.create_table(
        "step_attempts",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "iteration", "key"),
    )


def downgrade() -> None:
    op.drop_table("step_attempts")
    op.drop_index("ix_tasks_heartbeat", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("held")
        batch.drop_column("heartbeat_at")
        batch.drop_column("wave")
