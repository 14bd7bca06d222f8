"""Add the tenants' agent types (a row per version), and the version each step ran with.

Row-level security holds agent_types to its tenant, as every tenant-owned table (0008).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "agent_types",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("definition", Json, nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column(
        "steps", sa.Column("agent_version", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column(
        "subtasks", sa.Column("agent_version", sa.Integer, nullable=False, server_default="1")
    )
    op.add_column("subtasks", sa.Column("queue", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE agent_types ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE agent_types FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON agent_types USING ({RULE}) WITH CHECK ({RULE})"
        )


def downgrade() -> None:
    with op.batch_alter_table("subtasks") as batch:
        batch.drop_column("queue")
        batch.drop_column("agent_version")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("agent_version")
    op.drop_table("agent_types")
