"""`mesh tenant erase T`: a tenant's erasure (GDPR) from the command line.

It reads the same settings as `mesh serve` and `mesh keys`, and talks to the record and to
Redis directly, so it works whether or not Mesh is running. On the embedded default it uses
the Redis of the `mesh serve` that holds the data dir, or, when none runs, starts that Redis
itself (holding the data dir, so that no serve starts meanwhile): the memory view it keeps
on disk must be erased too. What `DELETE /api/mesh/tenant` does, it does: every row and Redis
key of the tenant, its API keys included, but the audit trail, which records the erasure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from meshcli.keys import MAX_TENANT
from meshcli.record import record_engine, require_table
from meshcore.domain.errors import MeshError
from meshcore.settings import Settings

if TYPE_CHECKING:
    import redis

    from meshcore.services.erasure import Erased

# In the trail, the command stands where a request's route does, with the status the API
# answers the same erasure.
ROUTE, STATUS = "mesh tenant erase", 202


@click.group()
def tenant() -> None:
    """A tenant as a whole: erase everything of it (GDPR)."""
    from meshcore.logs import configure_logging

    configure_logging("WARNING")


@tenant.command("erase")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Erase without asking first.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def erase(tenant_id: str, yes: bool, as_json: bool) -> None:
    """Erase TENANT_ID: networks, agents, tasks, memory, API keys, Redis keys. Not undone."""
    tenant_id = tenant_id.strip()
    if not tenant_id or len(tenant_id) > MAX_TENANT:
        raise click.BadParameter(f"1 to {MAX_TENANT} characters", param_hint="TENANT_ID")
    if not yes:
        click.confirm(
            f"Erase everything of tenant {tenant_id!r}: its networks, tasks, memory and API "
            "keys, for good (its audit trail is kept)?",
            abort=True,
            err=True,
        )
    try:
        erased = _erase(Settings(), tenant_id)
    except ValueError as exc:  # real servers without MESH_API_KEY_SECRET
        raise click.ClickException(str(exc)) from exc
    except MeshError as exc:  # a record or a Redis that cannot be reached
        raise click.ClickException(str(exc)) from exc
    if as_json:
        shown = {"tenant": erased.tenant_id, "rows": erased.rows, "redis_keys": erased.redis_keys}
        click.echo(json.dumps(shown))
        return
    rows = ", ".join(f"{n} {table}" for table, n in erased.rows.items() if n)
    click.echo(
        f"tenant {tenant_id} erased: {rows or 'no rows'}; {erased.redis_keys} Redis keys. "
        "Its audit trail is kept."
    )


def _erase(settings: Settings, tenant_id: str) -> Erased:
    from meshcore import bootstrap
    from meshcore.adapters.sql.audit import SqlAuditTrail
    from meshcore.domain.audit import AuditEvent
    from meshcore.domain.clock import SystemClock

    with record_engine(settings) as engine:
        keys = bootstrap.build_keys(settings, engine)  # the secret first: no record touched
        require_table(engine, "audit_events")
        with _redis(settings) as client:
            erased = bootstrap.build_erasure(engine, client, keys).erase_tenant(tenant_id)
        SqlAuditTrail(engine).append(
            AuditEvent(
                tenant_id=tenant_id,
                key_id=None,
                method="DELETE",
                route=ROUTE,
                resource_id=None,
                status=STATUS,
                at=SystemClock().now(),
            )
        )
    return erased


@contextmanager
def _redis(settings: Settings) -> Iterator[redis.Redis]:
    """The Redis `settings` name; on the embedded default, serve's, or one started here."""
    import redis

    if settings.redis_url is not None:
        from meshcore.adapters import redis_tls

        client = redis_tls.connect(settings)
        try:
            yield client
        finally:
            client.close()
        return
    from meshcli.embedded_redis import SETTINGS_FILE, EmbeddedRedis
    from meshcli.lock import AlreadyRunning, DataDirLock

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(data_dir)
    try:
        lock.acquire(port=0, shown_as=str(data_dir))
    except AlreadyRunning:
        # A serve holds the data dir: its Redis is the one to erase from.
        socket = json.loads((data_dir / SETTINGS_FILE).read_text())["unixsocket"]
        client = redis.Redis(unix_socket_path=socket)
        try:
            yield client
        finally:
            client.close()
        return
    server = EmbeddedRedis(data_dir)
    try:
        server.start()
        client = redis.Redis(unix_socket_path=str(server.socket))
        try:
            yield client
        finally:
            client.close()
    finally:
        server.stop()
        lock.release()
