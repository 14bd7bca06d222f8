"""Which tenant's rows a Postgres transaction may see: the setting row-level security reads.

Migration 0008 gives every tenant-owned table a policy that admits a row only when its
tenant_id equals `mesh.tenant`, or when `mesh.every_tenant` is 'on'. A connection carries its
tenant as the execution option `mesh_tenant`; each transaction it begins sets the matching
setting, local to that transaction, so it never outlives the transaction on a pooled
connection. A connection without the option sets nothing and sees no tenant-owned row at all:
code that forgot its tenant fails closed.

Two separate settings, so that no tenant's name (whatever `mesh keys create --tenant` was
given) can mean "every tenant". Only the paths that serve the whole fleet ask for every
tenant, through `across_tenants`: the sweeper's finder, key lookups (the tenant is not known
until the key is found), `mesh keys list` without --tenant, and the migrations.

SQLite has no row-level security; there the option is carried and ignored.
"""

from __future__ import annotations

import sqlalchemy as sa

OPTION = "mesh_tenant"
EVERY_TENANT = object()  # the option's value on the paths that serve every tenant

_SESSION_WIDE = "mesh_tenant_session_wide"
_SET_TENANT = sa.text("SELECT set_config('mesh.tenant', :value, :is_local)")
_SET_EVERY = sa.text("SELECT set_config('mesh.every_tenant', 'on', :is_local)")
_FORGET = sa.text(
    "SELECT set_config('mesh.tenant', '', false), set_config('mesh.every_tenant', '', false)"
)


def scoped(connection: sa.Connection, tenant_id: str) -> sa.Connection:
    """`connection`, its transactions limited to `tenant_id`'s rows."""
    return connection.execution_options(**{OPTION: tenant_id})


def across_tenants(engine: sa.Engine) -> sa.Engine:
    """`engine` (same pool), its transactions admitted to every tenant's rows.

    Only for work that serves the whole fleet; a tenant's own work goes through its unit
    of work.
    """
    return engine.execution_options(**{OPTION: EVERY_TENANT})


def install(engine: sa.Engine) -> None:
    """Set the tenant at every BEGIN of `engine`'s connections (Postgres only)."""
    if engine.dialect.name == "postgresql" and not sa.event.contains(engine, "begin", _begin):
        sa.event.listen(engine, "begin", _begin)


def forget(connection: sa.Connection) -> None:
    """Clear a tenant an AUTOCOMMIT connection set for its whole session, before it goes back
    to the pool."""
    if connection.info.pop(_SESSION_WIDE, False):
        connection.execute(_FORGET)


def _begin(connection: sa.Connection) -> None:
    options = connection.get_execution_options()
    tenant = options.get(OPTION)
    if tenant is None:
        return
    # With AUTOCOMMIT every statement is its own transaction, so a transaction-local setting
    # would be gone by the next statement: set it for the session, and `forget` it after.
    is_local = options.get("isolation_level") != "AUTOCOMMIT"
    if not is_local:
        connection.info[_SESSION_WIDE] = True
    if tenant is EVERY_TENANT:
        connection.execute(_SET_EVERY, {"is_local": is_local})
    else:
        connection.execute(_SET_TENANT, {"value": tenant, "is_local": is_local})
