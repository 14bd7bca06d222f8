"""With the first provider down, every task of a batch still completes, and the fleet's
breaker stops calling the dead provider within the first few calls."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.server import AUTH, mesh_serve, poll
from tests.provider_server import provider_server

# An outage drill: `make chaos` runs it.
pytestmark = [pytest.mark.e2e, pytest.mark.drill]

BATCH = 24
DEAD, ALIVE = "openai/gpt-4o", "anthropic/claude-3-7-sonnet-20250219"


def test_a_batch_completes_while_the_first_provider_is_down(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/15"
    redis.Redis.from_url(url).flushdb()
    with provider_server() as provider:
        provider.behave("gpt-4o", default="500")
        settings = {
            "database_url": database_url,
            "redis_url": url,
            "model_chain": json.dumps([DEAD, ALIVE]),
            "provider_api_bases": json.dumps(
                {"openai": provider.openai_base, "anthropic": provider.anthropic_base}
            ),
            "allow_offline_model": "false",
            "breaker_failure_threshold": "3",
        }
        keys = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}
        with (
            mesh_serve(tmp_path, env=keys, **settings) as base,
            httpx.Client(base_url=base, timeout=10, headers=AUTH) as client,
        ):
            network_id = client.post(
                "/api/mesh/networks", json={"name": "outage", "config": {"quality_threshold": 0.0}}
            ).json()["id"]
            locations = [
                client.post(
                    f"/api/mesh/networks/{network_id}/tasks",
                    json={"description": f"Launch email #{i}"},
                ).headers["Location"]
                for i in range(BATCH)
            ]
            tasks = [poll(client, location, timeout=180) for location in locations]
            breakers = {p["model"]: p for p in client.get("/api/mesh/providers").json()}

    calls = sum(len(t["history"]) for t in tasks)
    dead, alive = provider.requests["gpt-4o"], provider.requests["claude-3-7-sonnet-20250219"]
    print(
        f"\nprovider outage: {BATCH} tasks, "
        f"{sum(t['status'] == 'completed' for t in tasks)} completed, "
        f"{dead} requests to the dead provider, {alive} to the fallback "
        f"({calls} history lines)"
    )
    assert [t["status"] for t in tasks] == ["completed"] * BATCH
    steps = [h for t in tasks for h in t["history"] if h["kind"] == "step"]
    assert {h["detail"]["model"] for h in steps} == {ALIVE}
    # Three failures open the breaker; a few calls already under way may still fail into it.
    assert dead <= 3 + 8
    assert breakers[DEAD]["state"] == "open"
    assert breakers[DEAD]["times_opened"] >= 1
