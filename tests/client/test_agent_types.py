"""The catalog of agent types, in both clients, against a scripted API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meshclient import AgentTypeDefinition, AsyncMesh, Conflict, Mesh
from tests.client.fakes import API_KEY, BASE_URL, ScriptedApi, error

LEGAL: AgentTypeDefinition = {
    "name": "legal",
    "description": "Checks claims against advertising law.",
    "role": "You are the legal reviewer of a marketing team.",
}
MADE = {**LEGAL, "version": 1, "builtin": False, "queue": "agent.general"}


def mesh_for(api: ScriptedApi) -> Mesh:
    return Mesh(BASE_URL, API_KEY, transport=api.transport, sleep=lambda _: None)


def test_the_catalog_is_listed_read_made_changed_and_deleted() -> None:
    api = ScriptedApi(
        httpx.Response(200, json=[MADE]),
        httpx.Response(201, json=MADE),
        httpx.Response(200, json={**MADE, "version": 2}),
        httpx.Response(200, json=MADE),
        httpx.Response(204),
    )

    with mesh_for(api) as mesh:
        assert mesh.list_agent_types() == [MADE]
        assert mesh.create_agent_type(LEGAL) == MADE
        body = {k: v for k, v in LEGAL.items() if k != "name"}
        assert mesh.change_agent_type("legal", body)["version"] == 2  # type: ignore[arg-type]
        assert mesh.get_agent_type("legal", 1) == MADE
        mesh.delete_agent_type("legal")

    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/api/mesh/agent-types"),
        ("POST", "/api/mesh/agent-types"),
        ("PUT", "/api/mesh/agent-types/legal"),
        ("GET", "/api/mesh/agent-types/legal/versions/1"),
        ("DELETE", "/api/mesh/agent-types/legal"),
    ]
    assert api.bodies()[1] == LEGAL


def test_a_create_whose_answer_was_lost_answers_the_type_the_first_attempt_made() -> None:
    api = ScriptedApi(
        httpx.ReadTimeout("the answer was lost"),
        error(409, "agent type 'legal' exists: PUT changes it"),
        httpx.Response(200, json=MADE),
    )

    with mesh_for(api) as mesh:
        assert mesh.create_agent_type(LEGAL) == MADE

    assert api.requests[-1].url.path == "/api/mesh/agent-types/legal"


def test_a_name_taken_on_the_first_attempt_is_a_conflict() -> None:
    api = ScriptedApi(error(409, "agent type 'legal' exists: PUT changes it"))

    with mesh_for(api) as mesh, pytest.raises(Conflict, match="exists"):
        mesh.create_agent_type(LEGAL)


def test_the_async_client_lists_the_catalog() -> None:
    api = ScriptedApi(httpx.Response(200, json=[MADE]))

    async def sleep(_: float) -> None:
        return None

    async def listed() -> list[AgentTypeDefinition]:
        async with AsyncMesh(BASE_URL, API_KEY, transport=api.transport, sleep=sleep) as mesh:
            return await mesh.list_agent_types()

    assert asyncio.run(listed()) == [MADE]
