"""Give each task a revision and each of its events a number: the log clients read and resume.

`tasks.revision` moves on every change a client can see, and `task_events.seq` numbers a
task's events 1, 2, 3... in the order they committed (each is assigned under the task's row
lock, so numbers never skip or repeat). Events stored before this get their numbers in the
order of their serial ids, and each task's revision is its last event's number.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("revision", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column("task_events", sa.Column("seq", sa.Integer, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # Row-level security: the backfill serves every tenant (tenancy.py).
        op.execute("SELECT set_config('mesh.every_tenant', 'on', true)")
    op.execute(
        "UPDATE task_events SET seq = (SELECT count(*) FROM task_events AS e"
        " WHERE e.task_id = task_events.task_id AND e.id <= task_events.id)"
    )
    op.execute(
        "UPDATE tasks SET revision = (SELECT count(*) FROM task_events AS e"
        " WHERE e.task_id = tasks.id)"
    )
    op.create_index("ux_task_events_seq", "task_events", ["task_id", "seq"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_task_events_seq", table_name="task_events")
    op.drop_column("task_events", "seq")
    op.drop_column("tasks", "revision")
