"""A tenant's own agent type at work: made over HTTP, planned for, run by real workers on the
shared agent.general queue, its answer checked against its schema, its version on record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from meshcli.main import main
from meshcore.domain.agent_types import GENERAL_QUEUE
from tests.integration.api.client import API, NETWORKS, ApiClient
from tests.integration.api.private_api import BUILTIN_QUEUES
from tests.integration.api.test_agent_types import VERDICT, legal
from tests.integration.fleet import WorkerSpec

pytestmark = pytest.mark.integration

GENERAL = "general@types"
LEGAL = "legal@types"
TEAM = [{"type": t} for t in ("coordinator", "critic", "research", "legal")]
# agent.general has a worker of its own, so the test sees where the legal step ran.
WORKERS = [
    WorkerSpec("coordinator@types", ["coordinator"], concurrency=4),
    WorkerSpec("builtin@types", BUILTIN_QUEUES, concurrency=4),
    WorkerSpec(GENERAL, [GENERAL_QUEUE], concurrency=4),
    WorkerSpec(LEGAL, ["agent.legal"], concurrency=2),  # the pool an operator adds
]


def run(client: ApiClient, network_id: str, description: str) -> dict[str, Any]:
    response = client.post(
        f"{NETWORKS}/{network_id}/tasks",
        json={"description": description},
        query_string={"wait": 0},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    url = response.headers["Location"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = client.get(url).get_json()
        if task["status"] in ("completed", "failed", "timed_out", "cancelled"):
            return task
        time.sleep(0.3)
    raise AssertionError(f"task still {task['status']}")


def legal_steps(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in task["history"] if h["kind"] == "step" and h["agent"] == "legal"]


def test_a_new_type_is_planned_for_runs_on_the_general_queue_and_answers_to_its_schema(
    client: ApiClient,
) -> None:
    assert client.post(f"{API}/agent-types", json=legal()).status_code == 201
    network = client.post(NETWORKS, json={"name": "legal team", "agents": TEAM}).get_json()

    task = run(client, network["id"], "Write the launch email for Orbit")

    assert task["status"] == "completed", task.get("error")
    plan = next(h for h in task["history"] if h["kind"] == "plan")
    assert {s["agent"] for s in plan["detail"]["subtasks"]} == {"research", "legal"}
    planned = next(s for s in plan["detail"]["subtasks"] if s["agent"] == "legal")
    assert planned["agent_version"] == 1
    [step] = legal_steps(task)
    assert step["queue"] == GENERAL_QUEUE
    assert step["detail"]["worker"] == GENERAL
    assert step["detail"]["agent_version"] == 1
    assert step["detail"]["status"] == "completed"
    contribution = next(c for c in task["result"]["contributions"] if c["agent"] == "legal")
    jsonschema.validate(json.loads(contribution["output"]), VERDICT)  # the answer as checked


def test_after_an_edit_new_steps_run_with_the_new_version_and_history_keeps_the_old(
    client: ApiClient,
) -> None:
    client.post(f"{API}/agent-types", json=legal())
    network = client.post(NETWORKS, json={"name": "legal team", "agents": TEAM}).get_json()
    before = run(client, network["id"], "Write the launch email for Orbit")
    stricter = legal(role="You are the strict legal reviewer.")
    del stricter["name"]
    assert client.put(f"{API}/agent-types/legal", json=stricter).get_json()["version"] == 2

    after = run(client, network["id"], "Write the pricing page for Orbit")

    assert after["status"] == "completed", after.get("error")
    assert {s["detail"]["agent_version"] for s in legal_steps(after)} == {2}
    again = client.get(f"{NETWORKS}/{network['id']}/tasks/{before['id']}").get_json()
    assert {s["detail"]["agent_version"] for s in legal_steps(again)} == {1}
    assert "strict" in client.get(f"{API}/agent-types/legal/versions/2").get_json()["role"]
    assert "strict" not in client.get(f"{API}/agent-types/legal/versions/1").get_json()["role"]


def test_a_type_given_its_own_queue_runs_there_and_its_pool_renders_into_the_deploy_files(
    client: ApiClient, tmp_path: Path
) -> None:
    made = client.post(f"{API}/agent-types", json=legal(queue="agent.legal")).get_json()
    network = client.post(NETWORKS, json={"name": "legal team", "agents": TEAM}).get_json()

    task = run(client, network["id"], "Write the launch email for Orbit")

    assert task["status"] == "completed", task.get("error")
    assert {(s["queue"], s["detail"]["worker"]) for s in legal_steps(task)} == {
        ("agent.legal", LEGAL)
    }
    # The operator's part: the type's queue gets a pool in the one list, then a render.
    root = Path(__file__).resolve().parents[4]
    pools = yaml.safe_load((root / "deploy" / "pools.yaml").read_text())
    pools["pools"].append({"name": made["name"], "queue": made["queue"]})
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump(pools, sort_keys=False))
    out = tmp_path / "rendered"
    result = CliRunner().invoke(
        main, ["deploy", "render", "--pools", str(tmp_path / "pools.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    compose = yaml.safe_load((out / "compose.yaml").read_text())
    assert compose["services"]["worker-legal"]["environment"]["MESH_WORKER_QUEUES"] == (
        "agent.legal"
    )
    k8s = [d for d in yaml.safe_load_all((out / "k8s/base/workers.yaml").read_text()) if d]
    deployment = next(d for d in k8s if d["metadata"]["name"] == "mesh-worker-legal")
    assert deployment["kind"] == "Deployment"
    assert deployment["spec"]["template"]["metadata"]["labels"]["queue"] == "agent.legal"
    scaled = (out / "k8s/components/keda/scaledobjects.yaml").read_text()
    assert 'listName: "agent.legal"' in scaled
