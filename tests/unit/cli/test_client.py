"""meshcli/client.py: the URL a user types, the network a command works on, and the errors a
user reads (with what to do about a refused key or an untrusted certificate)."""

from __future__ import annotations

import json

import click
import httpx
import pytest

from meshcli.client import (
    CLI_NETWORK,
    Api,
    api_url,
    explain,
    find_network,
    key_hint,
    network_for,
    session,
    task_in,
)
from meshclient import Conflict, Mesh, NotFound, TransportError, Unauthorized

NETWORK_ID = "3f1d2c4b-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("localhost:8600", "http://localhost:8600"),
        ("127.0.0.1:8600/", "http://127.0.0.1:8600"),
        ("http://localhost:8600", "http://localhost:8600"),
        ("https://mesh.example.com", "https://mesh.example.com"),
        ("mesh.example.com", "http://mesh.example.com"),
    ],
)
def test_api_url_accepts_a_url_without_a_scheme(typed: str, url: str) -> None:
    assert api_url(typed) == url


def test_a_task_url_is_under_the_api_the_user_named() -> None:
    api = Api(url="localhost:8600/", api_key="k", ca_file=None)

    assert api.task_url("n1", "t1") == "http://localhost:8600/api/mesh/networks/n1/tasks/t1"


def test_a_401_without_a_key_says_how_to_pass_one() -> None:
    hint = key_hint(401, has_key=False)

    assert hint is not None
    assert "--api-key" in hint and "MESH_API_KEY" in hint


def test_a_refused_key_or_scope_says_what_to_do() -> None:
    refused, scope = key_hint(401, has_key=True), key_hint(403, has_key=True)

    assert refused is not None and "mesh keys create" in refused
    assert scope is not None and "read and write scopes" in scope


def test_other_errors_get_no_key_hint() -> None:
    assert key_hint(404, has_key=True) is None
    assert key_hint(None, has_key=False) is None


def test_an_error_answer_reads_as_its_status_and_the_apis_message() -> None:
    message = "task 42 is completed; only an unfinished task can be cancelled"
    conflict = Conflict(409, {"code": 409, "message": message}, message)

    assert explain(conflict) == f"409: {message}"


def test_a_refused_key_is_explained_with_its_hint() -> None:
    refused = Unauthorized(401, None, "Unauthorized")

    assert explain(refused).splitlines() == ["401: Unauthorized", key_hint(401, has_key=True)]


def test_a_command_without_a_key_says_how_to_pass_one_before_connecting() -> None:
    with pytest.raises(click.ClickException) as raised, session(Api("localhost:1", None, None)):
        pytest.fail("no client without a key")

    assert "--api-key KEY or MESH_API_KEY=KEY" in raised.value.message


def test_an_untrusted_certificate_says_how_to_pass_the_ca() -> None:
    failure = TransportError("GET /api/mesh/networks failed: [SSL: CERTIFICATE_VERIFY_FAILED] x")

    with pytest.raises(click.ClickException) as raised, session(Api("https://h", "k", None)):
        raise failure

    assert "CERTIFICATE_VERIFY_FAILED" in raised.value.message
    assert "--ca-file or MESH_CA_FILE" in raised.value.message


def test_a_task_missing_from_the_default_network_asks_for_its_network() -> None:
    missing = NotFound(404, None, "task t1 not found")

    with pytest.raises(click.ClickException) as raised, task_in(None, "t1"):
        raise missing
    with pytest.raises(NotFound), task_in(NETWORK_ID, "t1"):
        raise missing

    assert "not in the network mesh-cli: pass --network ID" in raised.value.message


def _networks(pages: list[list[dict[str, str]]]) -> tuple[Mesh, list[httpx.Request]]:
    """A client of an API whose networks come in these pages."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = int(request.url.params.get("page", "1"))
        header = {"total_pages": len(pages), "page": page}
        if page < len(pages):
            header["next_page"] = page + 1
        return httpx.Response(
            200, json=pages[page - 1], headers={"X-Pagination": json.dumps(header)}
        )

    return Mesh("http://mesh.test", "k", transport=httpx.MockTransport(answer)), seen


def test_the_default_network_is_found_on_any_page() -> None:
    mesh, seen = _networks(
        [[{"id": "a", "name": "launch"}], [{"id": NETWORK_ID, "name": CLI_NETWORK}]]
    )

    with mesh:
        assert find_network(mesh, CLI_NETWORK) == NETWORK_ID
        assert network_for(mesh, None) == NETWORK_ID
        assert network_for(mesh, "given") == "given"

    assert [r.url.params["page"] for r in seen] == ["1", "2", "1", "2"]


def test_without_a_default_network_a_command_asks_for_one() -> None:
    mesh, _ = _networks([[{"id": "a", "name": "launch"}]])

    with mesh:
        assert find_network(mesh, CLI_NETWORK) is None
        with pytest.raises(click.ClickException) as raised:
            network_for(mesh, None)

    assert "no network named mesh-cli" in raised.value.message
    assert "--network ID" in raised.value.message
