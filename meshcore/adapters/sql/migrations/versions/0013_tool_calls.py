"""Add tool_calls: each MCP tool call of a step, recorded before and after it is made.

Row-level security holds tool_calls to its tenant, as every tenant-owned table (0008).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)


def upgrade() -> None:
    op.create_table(
        "tool_calls",
        sa.Column(
            "task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("iteration", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("arguments_hash", sa.String(64), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("is_error", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tool_calls ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE tool_calls FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON tool_calls USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade() -> None:
    op.drop_table("tool_calls")
