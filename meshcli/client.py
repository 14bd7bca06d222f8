"""What the `mesh` commands that talk to the API share: where it is, the key, the CA, the
default network, and the one-paragraph errors a user reads when something goes wrong.

meshclient does the talking. It (and httpx under it) is imported only once a command
connects, so `mesh --help` and the commands that never reach the API start fast.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

import click

from meshcore.settings import Settings

if TYPE_CHECKING:
    from meshclient import ApiError, Mesh

CLI_NETWORK = "mesh-cli"
F = TypeVar("F", bound=Callable[..., object])
TLS_HINT = " (if the server's CA is a private one, pass it with --ca-file or MESH_CA_FILE)"


@dataclass(frozen=True)
class Api:
    """The API a command talks to, as the user gave it (options or environment)."""

    url: str | None
    api_key: str | None
    ca_file: str | None

    @functools.cached_property
    def root(self) -> str:
        """The API's base URL: MESH_URL or --url, else this machine on MESH_PORT."""
        if self.url is not None:
            return api_url(self.url)
        settings = Settings()
        return f"{'https' if settings.serves_https else 'http'}://127.0.0.1:{settings.port}"

    def task_url(self, network_id: str, task_id: str) -> str:
        """Where the whole record of a task can be read."""
        return f"{self.root}/api/mesh/networks/{quote(network_id)}/tasks/{quote(task_id)}"


def api_options(command: F) -> F:
    """Give a command --url, --api-key and --ca-file, handed to it as `api`."""

    @functools.wraps(command)
    def with_api(
        *args: object, url: str | None, api_key: str | None, ca_file: str | None, **kwargs: object
    ) -> object:
        return command(*args, api=Api(url, api_key, ca_file), **kwargs)

    options = [
        click.option(
            "--url",
            envvar="MESH_URL",
            default=None,
            help="The API, e.g. localhost:8600; default MESH_URL, "
            "else http(s)://127.0.0.1:MESH_PORT.",
        ),
        click.option(
            "--api-key",
            envvar="MESH_API_KEY",
            default=None,
            show_envvar=True,
            help="A key with the read and write scopes (mesh serve prints one at first start).",
        ),
        click.option(
            "--ca-file",
            envvar="MESH_CA_FILE",
            default=None,
            show_envvar=True,
            type=click.Path(exists=True, dir_okay=False),
            help="The CA that signed an https:// API's certificate; default: the system's CAs.",
        ),
    ]
    for option in reversed(options):
        with_api = option(with_api)
    return with_api  # type: ignore[return-value]


def json_option(command: F) -> F:
    """Give a command --json: its answer as JSON, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(command)


@contextmanager
def session(api: Api) -> Iterator[Mesh]:
    """A client of the API; an error it meets ends the command with what to do about it."""
    from meshclient import ApiError, Mesh, MeshError

    if not api.api_key or not api.api_key.strip():
        raise click.ClickException(key_hint(401, has_key=False) or "")
    # Verified against the CA file, else the system's CAs, the hostname checked: a key must
    # never go to a server that only claims to be Mesh.
    verify = ssl.create_default_context(cafile=api.ca_file)
    try:
        mesh = Mesh(api.root, api.api_key, verify=verify)
    except ValueError as exc:  # a URL that is no http(s) URL
        raise click.ClickException(str(exc)) from exc
    try:
        with mesh:
            yield mesh
    except ApiError as exc:
        raise click.ClickException(explain(exc)) from exc
    except MeshError as exc:  # unreachable, a wait that ran out, an answer that is not Mesh's
        message = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in message:
            message += TLS_HINT
        raise click.ClickException(message) from exc


def explain(exc: ApiError) -> str:
    """An error answer as the user reads it: status, the API's message, and a hint for keys."""
    message = f"{exc.status}: {exc.message}"
    if exc.errors:
        message += f" {json.dumps(exc.errors)}"
    hint = key_hint(exc.status, has_key=True)
    return f"{message}\n{hint}" if hint else message


def key_hint(status: int | None, *, has_key: bool) -> str | None:
    """What to do when the API refused the key (401) or its scopes (403)."""
    if status == 401 and not has_key:
        return (
            "The API needs a key (it answers 401 without one): pass one with --api-key KEY or"
            " MESH_API_KEY=KEY "
            "(mesh serve prints one at first start; `mesh keys create` makes more)."
        )
    if status == 401:
        return (
            "The API refused that key: check --api-key / MESH_API_KEY, or make a new one "
            "with `mesh keys create --tenant TENANT --scopes read,write`."
        )
    if status == 403:
        return (
            "That key lacks a scope this needs: pass a key with the read and write scopes "
            "(--api-key or MESH_API_KEY)."
        )
    return None


def api_url(text: str) -> str:
    """The API's base URL from what a user types: `localhost:8600` means http://localhost:8600."""
    text = text.strip()
    if not urlsplit(text).netloc:
        # urlsplit reads `localhost:8600` as scheme `localhost`: a URL needs `//` after its scheme.
        text = f"http://{text}"
    return text.rstrip("/")


def find_network(mesh: Mesh, name: str) -> str | None:
    """The id of the newest network with this name, if there is one (lists are newest first)."""
    page: int | None = 1
    while page is not None:
        networks = mesh.list_networks(page=page, page_size=100)
        for network in networks:
            if network["name"] == name:
                return network["id"]
        page = networks.next_page
    return None


def network_for(mesh: Mesh, network_id: str | None) -> str:
    """The network a command works on: the one given, else the one named mesh-cli."""
    if network_id is not None:
        return network_id
    if (found := find_network(mesh, CLI_NETWORK)) is not None:
        return found
    raise click.ClickException(
        f"There is no network named {CLI_NETWORK} yet (mesh submit makes it): pass --network ID."
    )


@contextmanager
def task_in(network_id: str | None, task_id: str) -> Iterator[None]:
    """Say that --network is needed when a task is not in the default network."""
    with found_in(network_id, f"Task {task_id}", "the network it was submitted to"):
        yield


@contextmanager
def found_in(network_id: str | None, what: str, which: str) -> Iterator[None]:
    """Say that --network (`which` network) is needed when `what` is not in the default
    network; with --network given, NotFound is the API's own answer."""
    from meshclient import NotFound

    try:
        yield
    except NotFound as exc:
        if network_id is not None:
            raise
        raise click.ClickException(
            f"{what} is not in the network {CLI_NETWORK}: pass --network ID, {which}."
        ) from exc
