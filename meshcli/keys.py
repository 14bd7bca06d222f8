"""`mesh keys`: API keys from the command line, in the record `mesh serve` uses.

The commands read the same settings as `mesh serve` (the embedded SQLite file and the data
dir's key secret, or MESH_DATABASE_URL and MESH_API_KEY_SECRET), and talk to the record
directly, so they work whether or not Mesh is running. They build only what keys need: no
Celery app, no Redis, no model libraries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click

from meshcli.record import record_engine, require_table
from meshcore.domain.errors import MeshError
from meshcore.domain.keys import ALL_SCOPES, ApiKey, Scope, is_key_id, parse_scopes
from meshcore.domain.network import DEFAULT_TENANT
from meshcore.settings import Settings

if TYPE_CHECKING:
    from meshcore.services.keys import KeyService

# The api_keys table's column sizes (migration 0006).
MAX_TENANT, MAX_NAME = 64, 200
FIRST_KEY_NAME = "first start"
COLUMNS = ("ID", "TENANT", "NAME", "SCOPES", "CREATED", "REVOKED")


@click.group()
def keys() -> None:
    """API keys: create, list and revoke them (in the record `mesh serve` uses)."""
    from meshcore.logs import configure_logging

    # Only problems, and on stderr: stdout is the command's answer (a key, a table, JSON).
    configure_logging("WARNING")


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant the key belongs to, e.g. default.")
@click.option("--scopes", required=True, help="Comma-separated: read, write, admin.")
@click.option("--name", default="", help="A label to tell keys apart in `mesh keys list`.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key", "tenant", "scopes"}.')
def create(tenant: str, scopes: str, name: str, as_json: bool) -> None:
    """Create a key: printed once, on the last line; only its hash is stored."""
    tenant = _bounded("--tenant", tenant, MAX_TENANT, required=True)
    name = _bounded("--name", name, MAX_NAME)
    try:
        wanted = parse_scopes(scopes)
    except MeshError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from exc
    with _service(Settings()) as service:
        key, text = service.create(tenant_id=tenant, scopes=wanted, name=name)
    if as_json:
        click.echo(json.dumps(created_json(key, text)))
        return
    # The note goes to stderr, so that `KEY=$(mesh keys create ...)` holds the key alone.
    click.echo(
        f"Created key {key.id} for tenant {key.tenant_id} ({scope_list(key.scopes)}). "
        "Keep it now: only its hash is stored, so it cannot be shown again.",
        err=True,
    )
    click.echo(text)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys; default: every tenant's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_(tenant: str | None, as_json: bool) -> None:
    """List keys, oldest first (never their secrets)."""
    with _service(Settings()) as service:
        found = service.list(tenant)
    if as_json:
        click.echo(json.dumps([key_json(k) for k in found]))
    elif found:
        click.echo(key_table(found))
    else:
        click.echo("no keys" + (f" for tenant {tenant}" if tenant else ""), err=True)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id; the API refuses it within 5 s."""
    from meshcore.services.keys import DEV_KEY_ID

    if key_id == DEV_KEY_ID:
        raise click.ClickException(
            "the development key is not stored: unset MESH_DEV_API_KEY to stop it working"
        )
    if not is_key_id(key_id):
        raise click.BadParameter(
            "a key id is the 16 hex digits after `mesh_` (see `mesh keys list`)",
            param_hint="KEY_ID",
        )
    with _service(Settings()) as service:
        key = service.revoke(key_id, tenant_id=None)
    click.echo(f"key {key.id} of tenant {key.tenant_id} revoked")


def first_start_key(settings: Settings) -> str | None:
    """A key of tenant `default` with every scope, made when that tenant has none yet."""
    with key_service(settings, migrate=False) as service:
        if service.list(DEFAULT_TENANT):
            return None
        return service.create(tenant_id=DEFAULT_TENANT, scopes=ALL_SCOPES, name=FIRST_KEY_NAME)[1]


@contextmanager
def key_service(settings: Settings, *, migrate: bool = True) -> Iterator[KeyService]:
    """The keys of the record `settings` name, hashed under the API's secret (ValueError on
    real servers without MESH_API_KEY_SECRET)."""
    from meshcore import bootstrap

    with record_engine(settings, migrate=migrate) as engine:
        keys = bootstrap.build_keys(settings, engine)  # the secret first: no record touched
        if settings.database_url is not None:
            require_table(engine, "api_keys", " (or start `mesh serve`)")
        yield keys


@contextmanager
def _service(settings: Settings) -> Iterator[KeyService]:
    """key_service for a command: what goes wrong is one line, not a traceback."""
    try:
        with key_service(settings) as service:
            yield service
    except ValueError as exc:  # real servers without MESH_API_KEY_SECRET
        raise click.ClickException(str(exc)) from exc
    except MeshError as exc:  # an unknown key id, a record that cannot be reached
        raise click.ClickException(str(exc)) from exc


def _bounded(option: str, value: str, limit: int, *, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise click.BadParameter("must not be empty", param_hint=option)
    if len(value) > limit:
        raise click.BadParameter(f"at most {limit} characters", param_hint=option)
    return value


def scope_list(scopes: frozenset[Scope]) -> str:
    """`read,write`: the scopes in the order they are typed."""
    return ",".join(s.value for s in Scope if s in scopes)


def created_json(key: ApiKey, text: str) -> dict[str, object]:
    scopes = scope_list(key.scopes).split(",")
    return {"id": key.id, "key": text, "tenant": key.tenant_id, "scopes": scopes}


def key_json(key: ApiKey) -> dict[str, object]:
    """A key as `mesh keys list --json` shows it: everything but a secret, which it never has."""
    return {
        "id": key.id,
        "tenant": key.tenant_id,
        "name": key.name,
        "scopes": scope_list(key.scopes).split(","),
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def key_table(found: list[ApiKey]) -> str:
    """The keys as aligned columns under a header line."""
    rows = [COLUMNS] + [
        (
            k.id,
            k.tenant_id,
            k.name or "-",
            scope_list(k.scopes),
            _when(k.created_at),
            _when(k.revoked_at) if k.revoked_at else "-",
        )
        for k in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")
