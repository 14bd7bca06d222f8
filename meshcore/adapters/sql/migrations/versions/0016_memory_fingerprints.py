"""Add memory items' fingerprints, memory_links and memory_restatements.

A fact or decision restated is merged into the item that holds it: memory_items gains a
keyed hash of its normalised content (`fingerprint`, unique per network and type, so two
writers of one fact cannot both insert it) and of a decision's subject (`subject`, indexed,
so a contradiction is found without reading the network). Rows already recorded keep NULL
in both: no key is at hand here to compute them, and NULLs never collide.

memory_links holds two contradicting decisions, one row each way; memory_restatements, the
item that holds a step's output when the output restated an item already there.

Row-level security holds both new tables to their tenant, as every tenant-owned table (0008).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)
TABLES = ("memory_links", "memory_restatements")


def upgrade() -> None:
    op.add_column("memory_items", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.add_column("memory_items", sa.Column("subject", sa.String(64), nullable=True))
    op.create_index(
        "uq_memory_fingerprint",
        "memory_items",
        ["tenant_id", "network_id", "type", "fingerprint"],
        unique=True,
    )
    op.create_index("ix_memory_subject", "memory_items", ["tenant_id", "network_id", "subject"])
    op.create_table(
        "memory_links",
        sa.Column(
            "item_id",
            sa.Uuid,
            sa.ForeignKey("memory_items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "other_id",
            sa.Uuid,
            sa.ForeignKey("memory_items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_memory_links_other", "memory_links", ["other_id"])
    op.create_table(
        "memory_restatements",
        sa.Column("task_id", sa.Uuid, primary_key=True),
        sa.Column("iteration", sa.Integer, primary_key=True),
        sa.Column("subtask", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "item_id",
            sa.Uuid,
            sa.ForeignKey("memory_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source_agent", sa.String(32), nullable=True),
        sa.Column("agent_id", sa.Uuid, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_memory_restatements_item", "memory_restatements", ["item_id"])
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY tenant_isolation ON {table} USING ({RULE}) WITH CHECK ({RULE})"
            )


def downgrade() -> None:
    op.drop_index("ix_memory_restatements_item", table_name="memory_restatements")
    op.drop_table("memory_restatements")
    op.drop_index("ix_memory_links_other", table_name="memory_links")
    op.drop_table("memory_links")
    op.drop_index("ix_memory_subject", table_name="memory_items")
    op.drop_index("uq_memory_fingerprint", table_name="memory_items")
    # SQLite before 3.35 drops no column in place; batch mode copies the table instead.
    with op.batch_alter_table("memory_items") as batch:
        batch.drop_column("subject")
        batch.drop_column("fingerprint")
