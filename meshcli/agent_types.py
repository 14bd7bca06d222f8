"""`mesh agent-types`: the tenant's catalog of agent types over the REST API."""

from __future__ import annotations

import json
from pathlib import Path

import click

from meshcli.client import Api, api_options, json_option, session
from meshcli.tables import table


@click.group("agent-types")
def agent_types() -> None:
    """The catalog of agent types: list, show, create, change, delete."""


@agent_types.command("list")
@json_option
@api_options
def list_types(api: Api, as_json: bool) -> None:
    """Every type: the built-in ones and the tenant's own."""
    with session(api) as mesh:
        found = mesh.list_agent_types()
    if as_json:
        click.echo(json.dumps(found))
        return
    rows = [
        (t["name"], t["version"], "built-in" if t["builtin"] else "own", t["queue"],
         t["description"])
        for t in found
    ]  # fmt: skip
    click.echo(table(("NAME", "VERSION", "KIND", "QUEUE", "DESCRIPTION"), rows))


@agent_types.command("show")
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(1), default=None)
@api_options
def show(name: str, api: Api, version: int | None) -> None:
    """A type as JSON: its current version, or --version N."""
    with session(api) as mesh:
        click.echo(json.dumps(mesh.get_agent_type(name, version), indent=2))


@agent_types.command("create")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
def create(definition: Path, api: Api) -> None:
    """Add a type from a JSON file (name, description, role, ...; see the README)."""
    with session(api) as mesh:
        made = mesh.create_agent_type(_read(definition))
    click.echo(f"agent type {made['name']} version {made['version']}")


@agent_types.command("change")
@click.argument("name")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@api_options
def change(name: str, definition: Path, api: Api) -> None:
    """Store a new version of a type from a JSON file (the whole type, without its name)."""
    body = {k: v for k, v in _read(definition).items() if k != "name"}
    with session(api) as mesh:
        made = mesh.change_agent_type(name, body)  # type: ignore[arg-type]
    click.echo(f"agent type {made['name']} version {made['version']}")


@agent_types.command("delete")
@click.argument("name")
@api_options
def delete(name: str, api: Api) -> None:
    """Delete a type no network uses."""
    with session(api) as mesh:
        mesh.delete_agent_type(name)
    click.echo(f"agent type {name} deleted")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold one JSON object")
    return data
