"""`mesh`: the command line entry point. Heavy imports stay inside the commands."""

from __future__ import annotations

import gc
import sys

import click

from meshcli.agent_types import agent_types
from meshcli.data_keys import data_keys
from meshcli.deploy import deploy
from meshcli.keys import keys
from meshcli.memory import memory
from meshcli.networks import networks
from meshcli.submit import submit
from meshcli.tasks import tasks
from meshcli.tenant import tenant
from meshcore.settings import Settings


@click.group()
@click.version_option(package_name="mesh", message="%(prog)s, version %(version)s")
def main() -> None:
    """Mesh: an AI mesh network as a service."""


main.add_command(keys)
main.add_command(data_keys)
main.add_command(tenant)
main.add_command(submit)
main.add_command(tasks)
main.add_command(networks)
main.add_command(agent_types)
main.add_command(memory)
main.add_command(deploy)


@main.group()
def db() -> None:
    """The record's schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to MESH_DATABASE_URL (or the embedded SQLite file)."""
    from meshcore.adapters.sql.migrate import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url(), revision)
    click.echo(f"database at revision {revision}")


@main.command()
@click.option("--queues", default=None, help="Comma-separated queues; default: all of them.")
@click.option(
    "--pool",
    default="threads",
    show_default=True,
    type=click.Choice(["threads", "prefork", "solo", "gevent"]),
)
@click.option("--concurrency", type=int, default=None, help="Default: MESH_WORKER_CONCURRENCY.")
@click.option("--hostname", default=None, help="Celery node name, e.g. agents@%h.")
@click.option(
    "--beat/--no-beat",
    default=False,
    help="Also send the periodic sweep that re-drives stalled tasks (one per fleet).",
)
def worker(
    queues: str | None, pool: str, concurrency: int | None, hostname: str | None, beat: bool
) -> None:
    """Run a Celery worker on Mesh's queues."""
    from meshcore.telemetry import exposition

    exposition.own_directory()  # before anything imports prometheus_client
    from meshcli import handback
    from meshcore.logs import configure_logging
    from meshworkers import telemetry
    from meshworkers.app import QUEUES, create_celery

    settings = Settings()
    configure_logging(settings.log_level)
    handback.install()
    argv = [
        "worker",
        "--queues",
        queues or ",".join(QUEUES),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency or settings.worker_concurrency),
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv += ["--hostname", hostname]
    app = create_celery(settings)
    if beat:
        from meshworkers.beat import threaded_beat

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app.steps["worker"].add(threaded_beat(settings.data_dir / "celerybeat-schedule"))
    telemetry.install(app)
    try:
        app.worker_main(argv)
    finally:
        exposition.remove_directory()
        # The interpreter's last garbage collection walks every object the model libraries
        # made (over a second of CPU) only to free memory the exit frees anyway; frozen
        # objects are skipped, so a stopped worker exits at once.
        gc.freeze()


@main.command()
@click.option("--port", type=int, default=None, help="Default: MESH_PORT (8000).")
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(port: int | None, host: str) -> None:
    """Start the API and the workers; with no server URLs set, on embedded SQLite and Redis."""
    from meshcli.serve import run

    settings = Settings()
    sys.exit(run(settings, host=host, port=port or settings.port))


if __name__ == "__main__":
    main()
