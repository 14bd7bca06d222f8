"""`mesh memory`: a network's shared memory over the REST API: list, search and add items,
read an item's confidence history, and promote an item to last."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager

import click

from meshcli.client import Api, api_options, found_in, json_option, network_for, session
from meshcli.tables import cut, echo_page, table, when

TYPES = ("fact", "context", "decision", "feedback")
NETWORK_HELP = "Default: the network named mesh-cli."


@click.group()
def memory() -> None:
    """A network's shared memory: list, search and add items, their history, promotion."""


@memory.command("list")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option(
    "--type", "types", multiple=True, type=click.Choice(TYPES), help="Only these; repeatable."
)
@click.option(
    "--q",
    "text",
    default=None,
    help="Text to search for: only the items holding one of its words, best first, scored.",
)
@click.option(
    "--agent",
    default=None,
    help="An agent type: rank as its steps do, by its weights, among the types it reads"
    " unless --type is given.",
)
@click.option(
    "--min-confidence", type=click.FloatRange(0, 1), default=None, help="Only items at or above."
)
@click.option("--task", "task_id", default=None, help="Only the items of this task.")
@click.option("--page", type=click.IntRange(1), default=None)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@api_options
def list_memory(
    api: Api,
    network_id: str | None,
    types: tuple[str, ...],
    text: str | None,
    agent: str | None,
    min_confidence: float | None,
    task_id: str | None,
    page: int | None,
    page_size: int,
    as_json: bool,
) -> None:
    """The network's memory items, newest first; with --q or --agent, best first, scored."""
    with session(api) as mesh:
        found = mesh.list_memory(
            network_for(mesh, network_id),
            type=list(types) or None,
            min_confidence=min_confidence,
            task_id=task_id,
            q=text,
            agent=agent,
            page=page,
            page_size=page_size,
        )
    if as_json:
        click.echo(json.dumps(found.items))
        return
    # A ranked list's order is its scores': without them it would look arbitrary.
    is_ranked = text is not None or agent is not None
    rows = [
        (
            m["id"],
            m["type"],
            *([_score(m.get("score"))] if is_ranked else []),
            f"{m['confidence']:.2f}",
            when(m["created_at"]),
            cut(m["content"], 70),
        )
        for m in found
    ]
    header = ("ID", "TYPE", *(["SCORE"] if is_ranked else []), "CONFIDENCE", "CREATED", "CONTENT")
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


@memory.command("history")
@click.argument("item_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@json_option
@api_options
def history(item_id: str, api: Api, network_id: str | None, as_json: bool) -> None:
    """An item's confidence and every change to it, oldest first: whose verdict, and why."""
    with (
        session(api) as mesh,
        item_in(network_id, item_id),
    ):
        found = mesh.memory_history(network_for(mesh, network_id), item_id)
    if as_json:
        click.echo(json.dumps(found))
        return
    click.echo(f"memory {found['item_id']} confidence {found['confidence']:.2f}")
    if not found["changes"]:
        click.echo("no changes: its confidence is the one it was written with")
        return
    rows = [
        (
            when(c["at"]),
            c["source"],
            f"{c['before']:.2f}",
            f"{c['after']:.2f}",
            c["task_id"],
            cut(c["reason"], 70),
        )
        for c in found["changes"]
    ]
    click.echo(table(("AT", "SOURCE", "BEFORE", "AFTER", "TASK", "REASON"), rows))


@memory.command("promote")
@click.argument("item_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@json_option
@api_options
def promote(item_id: str, api: Api, network_id: str | None, as_json: bool) -> None:
    """Make an item last: its expiry is cleared and, a context item, it outlives its task."""
    with (
        session(api) as mesh,
        item_in(network_id, item_id),
    ):
        item = mesh.promote_memory(network_for(mesh, network_id), item_id)
    if as_json:
        click.echo(json.dumps(item))
        return
    click.echo(f"memory {item['id']} {item['type']} promoted {when(item['promoted_at'])}")


def item_in(network_id: str | None, item_id: str) -> AbstractContextManager[None]:
    return found_in(network_id, f"Memory item {item_id}", "the network that holds it")


def _score(score: object) -> str | None:
    return f"{score:.2f}" if isinstance(score, int | float) else None
