"""Add webhooks: a network's signing secret, a task's subscription, and the deliveries.

Row-level security holds webhook_deliveries to its tenant, as every tenant-owned table (0008).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("networks", sa.Column("webhook_secret", sa.Text, nullable=True))
    op.add_column("tasks", sa.Column("webhook", Json, nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "task_id", sa.Uuid, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("network_id", sa.Uuid, nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("task_id", "event_seq", name="uq_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON webhook_deliveries"
            f" USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_column("tasks", "webhook")
    op.drop_column("networks", "webhook_secret")
