"""`mesh submit`: a task over the REST API, followed on its event stream to its answer."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from meshcli.client import CLI_NETWORK, Api, api_options, find_network, json_option, session
from meshcli.follow import event_line, follow, verdict

if TYPE_CHECKING:
    from meshclient import Event


@click.command()
@click.argument("description")
@click.option("--network", "network_id", default=None, help="Default: a network named mesh-cli.")
@click.option(
    "--priority", default="normal", show_default=True, type=click.Choice(["low", "normal", "high"])
)
@click.option(
    "--context",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Context the agents are given (a string value); repeat for more.",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    show_default=True,
    help="Follow the task's events until it ends; print the result.",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Stop following after this many seconds (the task goes on).",
)
@json_option
@api_options
def submit(
    description: str,
    api: Api,
    network_id: str | None,
    priority: str,
    pairs: tuple[str, ...],
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Submit a task; with --wait print each step as it happens, then the answer.

    Exits 1 when the task ends failed, cancelled or timed_out.
    """
    context = parse_context(pairs)
    with session(api) as mesh:
        network_id = network_id or find_network(mesh, CLI_NETWORK)
        if network_id is None:
            network_id = mesh.create_network(CLI_NETWORK)["id"]
        task = mesh.submit(network_id, description, context=context or None, priority=priority)
        url = api.task_url(network_id, task["id"])
        if not as_json:
            click.echo(f"task {task['id']} {task['status']}")
        if wait:
            with still_running(url):
                show = _silent if as_json else _line
                follow(mesh, network_id, task["id"], echo=show, timeout=timeout)
            task = mesh.get_task(network_id, task["id"])
    if as_json:
        click.echo(json.dumps(task))
    elif wait:
        click.echo("")
        click.echo(verdict(task, url))
    else:
        click.echo(f"task      {url}")
    if wait and task["status"] != "completed":
        sys.exit(1)


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    """`--context segment=developers` as {"segment": "developers"}: the value is the text
    after the first `=`, and each key is given once."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--context")
        if key in context:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="--context")
        context[key] = value
    return context


def _line(event: Event) -> None:
    click.echo(event_line(event))


def _silent(event: Event) -> None:
    """--json prints the task alone: its progress would spoil the JSON."""


@contextmanager
def still_running(url: str) -> Iterator[None]:
    """Say where the task can be read when we stop following it before it ends."""
    from meshclient import WaitTimeout

    try:
        yield
    except WaitTimeout as exc:
        raise click.ClickException(f"{exc}; it goes on: {url}") from exc
    except KeyboardInterrupt:
        click.echo(f"\nStopped following; the task goes on: {url}", err=True)
        raise
