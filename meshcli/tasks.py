"""`mesh tasks`: list, show, cancel a network's tasks, approve or reject a plan awaiting
approval, rate a finished task, and print a task's events."""

from __future__ import annotations

import json
from typing import IO

import click

from meshcli.client import Api, api_options, json_option, network_for, session, task_in
from meshcli.follow import event_json, event_line, follow, verdict
from meshcli.tables import cut, echo_page, table, when

STATUSES = (
    "queued",
    "planning",
    "awaiting_approval",
    "running",
    "synthesizing",
    "reviewing",
    "completed",
    "failed",
    "cancelled",
    "timed_out",
)
NETWORK_HELP = "The task's network; default: the network named mesh-cli."


@click.group()
def tasks() -> None:
    """A network's tasks: list, show, cancel, approve or reject a plan, rate, and events."""


@tasks.command("list")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option("--status", default=None, type=click.Choice(STATUSES), help="Only tasks in it.")
@click.option("--page", type=click.IntRange(1), default=None)
@click.option("--page-size", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@api_options
def list_tasks(
    api: Api,
    network_id: str | None,
    status: str | None,
    page: int | None,
    page_size: int,
    as_json: bool,
) -> None:
    """The network's tasks, newest first."""
    with session(api) as mesh:
        found = mesh.list_tasks(
            network_for(mesh, network_id), status=status, page=page, page_size=page_size
        )
    if as_json:
        click.echo(json.dumps(found.items))
        return
    rows = [
        (t["id"], t["status"], t["iteration"], when(t["created_at"]), cut(t["description"], 60))
        for t in found
    ]
    header = ("ID", "STATUS", "ITER", "CREATED", "DESCRIPTION")
    echo_page(found, header, rows, noun="tasks", none="no tasks")


@tasks.command("show")
@click.argument("task_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@json_option
@api_options
def show(task_id: str, api: Api, network_id: str | None, as_json: bool) -> None:
    """A task: its status, its subtasks, and its answer once it has one."""
    with session(api) as mesh, task_in(network_id, task_id):
        network = network_for(mesh, network_id)
        task = mesh.get_task(network, task_id)
    if as_json:
        click.echo(json.dumps(task))
        return
    usage = task["usage"]
    click.echo(
        "\n".join(
            [
                f"task         {task['id']}",
                f"status       {task['status']}",
                f"description  {cut(task['description'], 200)}",
                f"iteration    {task['iteration']}",
                f"priority     {task['priority']}",
                f"created      {when(task['created_at'])}",
                f"usage        {usage['input_tokens']} in / {usage['output_tokens']} out tokens,"
                f" ${usage['cost_usd']:.4f}",
                "",
            ]
        )
    )
    if task["subtasks"]:
        rows = [
            (
                s["iteration"],
                s["wave"],
                s["key"],
                s["agent"],
                s["status"],
                (s["step"] or {}).get("model"),
                _ms((s["step"] or {}).get("latency_ms")),
            )
            for s in task["subtasks"]
        ]
        header = ("ITER", "WAVE", "SUBTASK", "AGENT", "STATUS", "MODEL", "LATENCY")
        click.echo(table(header, rows))
        click.echo("")
    if task["status"] in ("completed", "failed", "cancelled", "timed_out"):
        click.echo(verdict(task, api.task_url(network, task["id"])))
    else:
        click.echo(f"task      {api.task_url(network, task['id'])}")


@tasks.command("cancel")
@click.argument("task_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@json_option
@api_options
def cancel(task_id: str, api: Api, network_id: str | None, as_json: bool) -> None:
    """Cancel a task that has not ended; it keeps what was done."""
    with session(api) as mesh, task_in(network_id, task_id):
        task = mesh.cancel(network_for(mesh, network_id), task_id)
    click.echo(json.dumps(task) if as_json else f"task {task['id']} {task['status']}")


@tasks.command("approve")
@click.argument("task_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option(
    "--plan",
    "plan_file",
    type=click.File("r"),
    default=None,
    help="A JSON file (- for stdin) with the plan to run instead: a list of subtasks"
    ' {"key", "agent", "description", "depends_on"}.',
)
@json_option
@api_options
def approve(
    task_id: str, api: Api, network_id: str | None, plan_file: IO[str] | None, as_json: bool
) -> None:
    """Approve the plan a task awaits approval of (or --plan in its place); it runs."""
    plan = None
    if plan_file is not None:
        try:
            plan = json.load(plan_file)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--plan") from exc
        if not isinstance(plan, list):
            raise click.BadParameter("must be a JSON list of subtasks", param_hint="--plan")
    with session(api) as mesh, task_in(network_id, task_id):
        task = mesh.approve(network_for(mesh, network_id), task_id, plan)
    click.echo(json.dumps(task) if as_json else f"task {task['id']} {task['status']}")


@tasks.command("reject")
@click.argument("task_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option("--reason", required=True, help="Why the plan is rejected (1-2000 characters).")
@json_option
@api_options
def reject(task_id: str, api: Api, network_id: str | None, reason: str, as_json: bool) -> None:
    """Reject the plan a task awaits approval of; the task ends cancelled, saying why."""
    with session(api) as mesh, task_in(network_id, task_id):
        task = mesh.reject(network_for(mesh, network_id), task_id, reason)
    click.echo(json.dumps(task) if as_json else f"task {task['id']} {task['status']}")


@tasks.command("rate")
@click.argument("task_id")
@click.argument("score", type=click.IntRange(1, 5))
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option("--comment", default=None, help="What was good or bad (1-2000 characters).")
@json_option
@api_options
def rate(
    task_id: str, score: int, api: Api, network_id: str | None, comment: str | None, as_json: bool
) -> None:
    """Rate a finished task from 1 (poor) to 5 (excellent), or change its rating; the
    memory it relied on learns from it."""
    with session(api) as mesh, task_in(network_id, task_id):
        rating = mesh.rate_task(network_for(mesh, network_id), task_id, score, comment)
    said = f": {rating['comment']}" if rating["comment"] else ""
    click.echo(json.dumps(rating) if as_json else f"task {task_id} rated {score}/5{said}")


@tasks.command("events")
@click.argument("task_id")
@click.option("--network", "network_id", default=None, help=NETWORK_HELP)
@click.option(
    "--follow/--no-follow",
    "-f",
    "is_following",
    default=False,
    show_default=True,
    help="Keep printing events as they happen, until the task ends.",
)
@click.option(
    "--after",
    type=click.IntRange(0),
    default=None,
    help="Only the events after this id (the id of the last one you have).",
)
@json_option
@api_options
def events(
    task_id: str,
    api: Api,
    network_id: str | None,
    is_following: bool,
    after: int | None,
    as_json: bool,
) -> None:
    """A task's events, one line each (with --json, one JSON object each)."""
    with session(api) as mesh, task_in(network_id, task_id):
        network = network_for(mesh, network_id)
        until = None
        if not is_following:
            # The revision is the id of the task's latest event: read up to it, then stop.
            until = mesh.get_task(network, task_id, view="summary")["revision"]
            if after is not None and after >= until:
                return
        follow(
            mesh,
            network,
            task_id,
            echo=lambda event: click.echo(event_json(event) if as_json else event_line(event)),
            after=after,
            until=until,
        )


def _ms(latency: object) -> str | None:
    return f"{latency:.0f} ms" if isinstance(latency, int | float) else None
