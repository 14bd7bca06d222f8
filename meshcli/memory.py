"""`mesh memory`: a network's shared memory over the REST API: list and add items."""

from __future__ import annotations

import json

import click

from meshcli.client import Api, api_options, json_option, network_for, session
from meshcli.tables import cut, echo_page, when

TYPES = ("fact", "context", "decision", "feedback")
NETWORK_HELP = "Default: the network named mesh-cli."


@click.group()
def memory() -> None:
    """A network's shared memory: list and add items."""


@memory.command("list")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option(
    "--type", "types", multiple=True, type=click.Choice(TYPES), help="Only these; repeatable."
)
@click.option("--page", type=click.IntRange(1), default=None)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@api_options
def list_memory(
    api: Api,
    network_id: str | None,
    types: tuple[str, ...],
    page: int | None,
    page_size: int,
    as_json: bool,
) -> None:
    """The network's memory items, newest first."""
    with session(api) as mesh:
        found = mesh.list_memory(
            network_for(mesh, network_id),
            type=list(types) or None,
            page=page,
            page_size=page_size,
        )
    if as_json:
        click.echo(json.dumps(found.items))
        return
    rows = [
        (m["id"], m["type"], f"{m['confidence']:.2f}", when(m["created_at"]), cut(m["content"], 70))
        for m in found
    ]
    header = ("ID", "TYPE", "CONFIDENCE", "CREATED", "CONTENT")
    echo_page(found, header, rows, noun="items", none="no memory items")


@memory.command("add")
@click.argument("content")
@click.option("--type", "kind", required=True, type=click.Choice(TYPES))
@click.option("--confidence", type=click.FloatRange(0, 1), default=None, help="0 to 1.")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@json_option
@api_options
def add(
    content: str,
    api: Api,
    kind: str,
    confidence: float | None,
    network_id: str | None,
    as_json: bool,
) -> None:
    """Add an item to the network's shared memory, for its agents to read."""
    with session(api) as mesh:
        item = mesh.add_memory(
            network_for(mesh, network_id),
            kind,
            content,
            confidence=confidence,
        )
    click.echo(json.dumps(item) if as_json else f"memory {item['id']} {item['type']}")
