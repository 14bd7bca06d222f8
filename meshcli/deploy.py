"""`mesh deploy render`: write the per-queue deploy files from deploy/pools.yaml."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def deploy() -> None:
    """Deployment files: render the per-queue ones from the list of worker pools."""


@deploy.command("render")
@click.option(
    "--pools",
    "pools_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The pools list. Default: deploy/pools.yaml in the repository.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the rendered files under this directory (same relative paths), not in place.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 listing the files that differ from what would be rendered.",
)
def render(pools_path: Path | None, out: Path | None, check: bool) -> None:
    """Render compose.yaml's workers, k8s/ and prometheus.yml's targets from the pools list."""
    from meshcli import deploy_render

    root = repository_root()
    try:
        pools = deploy_render.load_pools(pools_path or root / deploy_render.POOLS_FILE)
        files = deploy_render.render(pools, root)
    except deploy_render.RenderError as exc:
        raise click.ClickException(str(exc)) from exc
    destination = out or root
    stale = [
        path
        for path, text in files.items()
        if not (destination / path).is_file() or (destination / path).read_bytes() != text.encode()
    ]
    if check:
        if stale:
            listed = "\n".join(f"  {path}" for path in stale)
            raise click.ClickException(
                f"these files differ from what `mesh deploy render` renders:\n{listed}\n"
                "Run `mesh deploy render` and commit the result."
            )
        click.echo(f"{len(files)} files up to date")
        return
    for path in stale:
        target = destination / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[path].encode())
        click.echo(f"wrote {target}")
    click.echo(f"{len(files) - len(stale)} files unchanged, {len(stale)} written")


def repository_root() -> Path:
    """The checkout holding deploy/pools.yaml: the current directory or one above it, else
    the one this module is in."""
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents, Path(__file__).resolve().parents[1]):
        if (candidate / "deploy" / "pools.yaml").is_file():
            return candidate
    raise click.ClickException(
        "no deploy/pools.yaml here or above: run `mesh deploy render` in the repository"
    )
