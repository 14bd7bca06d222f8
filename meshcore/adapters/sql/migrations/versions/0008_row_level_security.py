"""Row-level security on every tenant-owned table: defence in depth behind the queries' filters.

A row is visible, and may be written, only in a transaction whose `mesh.tenant` setting is its
tenant_id, or whose `mesh.every_tenant` is 'on' (the few fleet-wide paths, tenancy.py). FORCE
applies the policy to the tables' owner too, so an application role that owns its schema is
held to it; superusers and roles with BYPASSRLS are never held to it (docs/operations.md).
SQLite has no row-level security: a no-op there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = (
    "networks",
    "agents",
    "tasks",
    "subtasks",
    "steps",
    "task_events",
    "memory_items",
    "step_attempts",
    "api_keys",
    "audit_events",
)
POLICY = "tenant_isolation"
RULE = (
    "tenant_id = current_setting('mesh.tenant', true)"
    " OR current_setting('mesh.every_tenant', true) = 'on'"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({RULE}) WITH CHECK ({RULE})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
