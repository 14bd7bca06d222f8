"""Add memory_confidence_changes and task_ratings: what memory learns, and from whom.

Each change to a memory item's confidence is kept with its reason (a critic's verdict, a
client's rating, a merge), so an item's history explains its confidence. A task has at most
one rating, which its client may change; its comment is the client's text, sealed.

Row-level security holds both to their tenant, as every tenant-owned table (0008).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)


def upgrade() -> None:
    op.create_table(
        "memory_confidence_changes",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "item_id",
            sa.Uuid,
            sa.ForeignKey("memory_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", sa.Uuid, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", sa.Float, nullable=False),
        sa.Column("after", sa.Float, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_confidence_changes_item", "memory_confidence_changes", ["item_id", "at"]
    )
    op.create_table(
        "task_ratings",
        sa.Column(
            "task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("score", sa.SmallInteger, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("memory_confidence_changes", "task_ratings"):
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_isolation ON {table} USING ({RULE}) WITH CHECK ({RULE})"
            )


def downgrade() -> None:
    op.drop_table("task_ratings")
    op.drop_index("ix_confidence_changes_item", table_name="memory_confidence_changes")
    op.drop_table("memory_confidence_changes")
