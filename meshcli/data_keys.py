"""`mesh data-keys`: the keys content is sealed under at rest (MESH_DATA_KEYS).

A rotation: put a new key first in MESH_DATA_KEYS on every process (the old one stays, after
it, so both open), run `mesh data-keys rotate` (it re-seals the record and the Redis memory
view under the first key, a batch at a time, while Mesh runs; run it again until it re-seals
nothing), and only then drop the old key. The commands read the same settings as `mesh
serve`, and talk to the record directly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from meshcore.settings import Settings

if TYPE_CHECKING:
    import redis

    from meshcore.adapters.sealing import Sealer
    from meshcore.adapters.sql.rotation import TableRotation


@click.group("data-keys")
def data_keys() -> None:
    """Data keys: generate one, and re-seal stored content under the first (MESH_DATA_KEYS)."""
    from meshcore.logs import configure_logging

    configure_logging("WARNING")  # stdout is the command's answer


@data_keys.command("generate")
def generate() -> None:
    """Print a new data key (a Fernet key), for the front of MESH_DATA_KEYS."""
    from meshcore.adapters.sealing import Sealer

    click.echo(Sealer.generate_key())


@data_keys.command("rotate")
@click.option("--tenant", default=None, help="Only this tenant's content; default: every tenant.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True)
def rotate(tenant: str | None, batch: int) -> None:
    """Re-seal every stored value under the first data key; resumable, safe while Mesh runs."""
    from meshcore import process_secrets
    from meshcore.adapters.sql.engine import create_engine
    from meshcore.adapters.sql.rotation import rotate_record
    from meshcore.adapters.sql.uow import UNAVAILABLE

    settings = Settings()
    try:
        sealer = process_secrets.build_sealer(settings)
    except ValueError as exc:  # no keys on real servers, or a malformed one
        raise click.ClickException(str(exc)) from exc
    if settings.database_url is None and not (settings.data_dir / "mesh.db").exists():
        raise click.ClickException(f"no record in {settings.data_dir}: nothing to re-seal")
    engine = create_engine(settings.resolved_database_url(), pool_size=1, max_overflow=0)
    try:
        tables = rotate_record(engine, sealer, tenant_id=tenant, batch=batch)
    except UNAVAILABLE as exc:
        raise click.ClickException(
            f"the record is unavailable: {getattr(exc, 'orig', exc)}"
        ) from exc
    finally:
        engine.dispose()
    for table in tables:
        click.echo(_line(table))
    _reseal_view(settings, sealer, tenant)
    unreadable = sum(len(t.unreadable) for t in tables)
    if unreadable:
        click.echo(
            f"{unreadable} value(s) are sealed under a key MESH_DATA_KEYS does not hold: "
            "put that key back (after the first) and run this again",
            err=True,
        )
        sys.exit(1)


def _line(table: TableRotation) -> str:
    line = f"{table.table}: {table.resealed} re-sealed, {table.current} already current"
    if table.changed:
        line += f", {table.changed} changed meanwhile (run again)"
    if table.unreadable:
        shown = ", ".join(table.unreadable[:5])
        line += f", {len(table.unreadable)} unreadable ({shown})"
    return line


def _reseal_view(settings: Settings, sealer: Sealer, tenant: str | None) -> None:
    """Re-seal the Redis memory view in place, where it can be reached.

    Not a failure when it cannot, or when an item no key opens: the view is a copy of the
    record, rebuilt from it once its mark expires, and meanwhile reads that meet such an item
    go to the record.
    """
    import redis as redis_py

    from meshcore.adapters.redis_memory import RedisMemoryStore
    from meshcore.domain.errors import MemoryViewUnavailable

    client = _view_client(settings)
    if client is None:
        click.echo("memory view: the embedded Redis is not running; it is rebuilt from the record")
        return
    try:
        seen, resealed, unreadable = RedisMemoryStore(client, sealer).reseal(tenant)
    except (MemoryViewUnavailable, redis_py.RedisError) as exc:
        click.echo(f"memory view: not re-sealed ({exc}); it is rebuilt from the record", err=True)
        return
    finally:
        client.close()
    line = f"memory view: {resealed} re-sealed, {seen - resealed - unreadable} already current"
    if unreadable:
        line += f", {unreadable} unreadable (their networks' views are rebuilt from the record)"
    click.echo(line)


def _view_client(settings: Settings) -> redis.Redis | None:
    """A client of the fleet's Redis: MESH_REDIS_URL, or the socket a running `mesh serve`'s
    embedded Redis listens on."""
    from meshcli.embedded_redis import SETTINGS_FILE
    from meshcore.adapters import redis_tls

    if settings.redis_url is not None:
        return redis_tls.connect(settings)
    found = settings.data_dir / SETTINGS_FILE
    if not found.exists():
        return None
    socket = Path(json.loads(found.read_text())["unixsocket"])
    if not socket.exists():
        return None
    return redis_tls.connect(settings.model_copy(update={"redis_url": f"unix://{socket}"}))
