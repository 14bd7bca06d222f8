"""Drop agents.in_flight: which agents are busy is live state, kept in Redis with a lease.

Two counter updates of one hot row per model call cost every step two round trips and a
transaction, and a worker that died mid-call left its count stuck.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("in_flight")


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("in_flight", sa.Integer(), nullable=False, server_default="0")
        )
