"""`mesh networks`: list, show, create and delete networks over the REST API."""

from __future__ import annotations

import json

import click

from meshcli.client import Api, api_options, json_option, session
from meshcli.tables import echo_page, table, when


@click.group()
def networks() -> None:
    """Networks of agents: list, show, create, delete."""


@networks.command("list")
@click.option("--page", type=click.IntRange(1), default=None)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@api_options
def list_networks(api: Api, page: int | None, page_size: int, as_json: bool) -> None:
    """The tenant's networks, newest first."""
    with session(api) as mesh:
        found = mesh.list_networks(page=page, page_size=page_size)
    if as_json:
        click.echo(json.dumps(found.items))
        return
    rows = [(n["id"], n["name"], len(n["agents"]), when(n["created_at"])) for n in found]
    echo_page(found, ("ID", "NAME", "AGENTS", "CREATED"), rows, noun="networks", none="no networks")


@networks.command("show")
@click.argument("network_id")
@json_option
@api_options
def show(network_id: str, api: Api, as_json: bool) -> None:
    """A network: its settings, its agents and what its tasks have used."""
    with session(api) as mesh:
        network = mesh.get_network(network_id)
    if as_json:
        click.echo(json.dumps(network))
        return
    config, usage = network["config"], network["usage"]
    settings = ", ".join(f"{k} {json.dumps(v)}" for k, v in config.items() if v is not None)
    click.echo(
        "\n".join(
            [
                f"network      {network['id']}",
                f"name         {network['name']}",
                f"description  {network['description'] or '-'}",
                f"config       {settings or '-'}",
                f"usage        {usage['input_tokens']} in / {usage['output_tokens']} out tokens,"
                f" ${usage['cost_usd']:.4f}",
                f"created      {when(network['created_at'])}",
                "",
            ]
        )
    )
    rows = [
        (a["name"], a["type"], a["queue"], a["status"], a["metrics"]["calls"])
        for a in network["agents"]
    ]
    click.echo(table(("AGENT", "TYPE", "QUEUE", "STATUS", "CALLS"), rows))


@networks.command("create")
@click.argument("name")
@click.option("--description", default=None)
@click.option(
    "--agent",
    "agent_types",
    multiple=True,
    metavar="TYPE",
    help="An agent of this type from the catalog, once per agent; none: the default team.",
)
@json_option
@api_options
def create(
    name: str, api: Api, description: str | None, agent_types: tuple[str, ...], as_json: bool
) -> None:
    """Create a network: the default team of seven agents, or the --agent types given."""
    agents = [{"type": t} for t in agent_types] or None
    with session(api) as mesh:
        network = mesh.create_network(name, description=description, agents=agents)
    if as_json:
        click.echo(json.dumps(network))
    else:
        click.echo(f"network {network['id']} {network['name']}")


@networks.command("delete")
@click.argument("network_id")
@click.option("--yes", is_flag=True, help="Delete without asking first.")
@api_options
def delete(network_id: str, api: Api, yes: bool) -> None:
    """Delete a network with its agents, tasks and memory. Not undone."""
    with session(api) as mesh:
        if not yes:
            name = mesh.get_network(network_id)["name"]
            click.confirm(
                f"Delete network {name!r} ({network_id}) with its agents, tasks and memory, "
                "for good?",
                abort=True,
                err=True,
            )
        mesh.delete_network(network_id)
    click.echo(f"network {network_id} deleted")
