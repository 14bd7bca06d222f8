"""Add memory items' lifetimes and each network's count of items.

memory_items gains `expires_at` (its type's time to live ended it; indexed for the sweep)
and `promoted_at` (promoted to last), and a partial index of the context items that end with
their task, so the sweep reads those and not the whole table. Rows already recorded keep
NULL in both: they last, as every item did before.

memory_counts holds how many items each network has, so that a write learns it took the
network past its bound without counting. No row is made here: a network's row is made from
a count of its items the first time it is needed (adapters/sql/lifetimes.py).

Row-level security holds memory_counts to its tenant, as every tenant-owned table (0008).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)
TASK_CONTEXT = "type = 'context' AND task_id IS NOT NULL AND promoted_at IS NULL"


def upgrade() -> None:
    op.add_column("memory_items", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("memory_items", sa.Column("promoted_at", sa.DateTime(timezone=True)))
    op.create_index("ix_memory_expires", "memory_items", ["expires_at"])
    op.create_index(
        "ix_memory_task_context",
        "memory_items",
        ["task_id"],
        postgresql_where=sa.text(TASK_CONTEXT),
        sqlite_where=sa.text(TASK_CONTEXT),
    )
    op.create_table(
        "memory_counts",
        sa.Column(
            "network_id",
            sa.Uuid,
            sa.ForeignKey("networks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("item_count", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE memory_counts ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE memory_counts FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON memory_counts USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade() -> None:
    op.drop_table("memory_counts")
    op.drop_index("ix_memory_task_context", table_name="memory_items")
    op.drop_index("ix_memory_expires", table_name="memory_items")
    # SQLite before 3.35 drops no column in place; batch mode copies the table instead.
    with op.batch_alter_table("memory_items") as batch:
        batch.drop_column("promoted_at")
        batch.drop_column("expires_at")
