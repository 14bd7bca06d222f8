"""What `mesh serve` prints once everything has started: where Mesh is and how to try it.

The commands are printed as they must be typed in the shell `mesh serve` was started from:
the `mesh` script by the path that reaches it, and `--url` whenever the CLI's default would
not find this server.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from meshcore.adapters.providers import KEY_SETTINGS, Providers
from meshcore.settings import OFFLINE_MODEL, Settings

DEFAULT_PORT: int = Settings.model_fields["port"].default
_ANY_ADDRESS = {"", "0.0.0.0", "::"}


def announce(
    settings: Settings, *, host: str, port: int, data_dir: Path, first_key: str | None = None
) -> None:
    """Print the banner to stderr, after the children's own start-up lines.

    `first_key` is the key `mesh serve` made at first start: printed here once, never again.
    """
    base = client_url(host, port, tls=settings.serves_https)
    where = f"embedded SQLite and Redis in {data_dir}"
    if not settings.is_embedded:
        where = "the configured servers"
    url_option = "" if base == f"http://127.0.0.1:{DEFAULT_PORT}" else f" --url {base}"
    key = key_note(settings, first_key)
    lines = [
        "",
        f"Mesh is starting on {base} ({where}).",
        *key.lines,
        f"  API docs:  {base}/api/mesh/docs (Authorize with the key)",
        f"  Try it:    {key.env}{mesh_command()} submit "
        f'"Write the launch email for Mesh" --wait{url_option}',
        f'  or:        curl -s -X POST {base}/api/mesh/networks -H "Authorization: Bearer '
        f"""{key.bearer}" -H 'Content-Type: application/json' -d '{{"name": "demo"}}'""",
    ]
    if settings.serves_https:
        lines.append(
            f"  HTTPS:     with {settings.tls_cert_file}; a client that does not trust its CA "
            "takes --ca-file CA (mesh, or MESH_CA_FILE) or --cacert CA (curl)"
        )
    if note := models_note(settings):
        lines.append(note)
    lines += ["Stop with Ctrl-C.", ""]
    click.echo("\n".join(lines), err=True)


@dataclass(frozen=True)
class KeyNote:
    """What the banner says about the API key, and how its commands pass one."""

    lines: list[str]
    env: str  # before `mesh submit`: MESH_API_KEY=...
    bearer: str  # the curl example's token


def key_note(settings: Settings, first_key: str | None) -> KeyNote:
    """The key made at first start, the development key, or where to get one."""
    if first_key is not None:
        return KeyNote(
            [
                f"  API key:   {first_key}",
                "             (tenant default, every scope; shown only now: Mesh keeps its hash)",
            ],
            env=f"MESH_API_KEY={first_key} ",
            bearer=first_key,
        )
    if settings.dev_api_key is not None:
        line = (
            "  API key:   MESH_DEV_API_KEY is in use (for development and tests only: a key of "
            "tenant default with every scope)"
        )
        return KeyNote([line], env='MESH_API_KEY="$MESH_DEV_API_KEY" ', bearer="$MESH_DEV_API_KEY")
    tenant = "default" if settings.is_embedded else "TENANT"
    create = f"`{mesh_command()} keys create --tenant {tenant} --scopes read,write`"
    where = "the key printed at first start, or to one" if settings.is_embedded else "a key"
    line = f"  API key:   set MESH_API_KEY to {where} from {create}"
    return KeyNote([line], env="", bearer="$MESH_API_KEY")


def client_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL a client on this machine uses to reach a server bound to host:port."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def mesh_command() -> str:
    """`mesh` if the shell finds this very script, else the shortest path that reaches it."""
    script = Path(sys.executable).with_name("mesh")
    if not script.exists():
        return "mesh"
    found = shutil.which("mesh")
    if found and Path(found).resolve() == script.resolve():
        return "mesh"
    return typed_path(script)


def typed_path(path: Path) -> str:
    """The path as the user would type it here: relative to the cwd when inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") or relative == "." else relative


def models_note(settings: Settings) -> str | None:
    """One line when no model provider is configured: who answers instead, if anyone."""
    providers = Providers(settings)
    models = [m for m in settings.model_chain if m != OFFLINE_MODEL]
    if any(providers.has_credentials(m) for m in models):
        return None
    keys = ", ".join(
        str(Settings.model_fields[name].validation_alias) for name in KEY_SETTINGS.values()
    )
    if providers.allows_offline:
        return (
            f"  Models:    No provider keys were found ({keys}), so the built-in offline "
            "model answers: deterministic, and not an AI."
        )
    return (
        f"  Models:    No provider keys were found ({keys}) and the offline model is off: "
        "every model call will fail."
    )
