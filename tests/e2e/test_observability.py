"""What an operator sees of a running Mesh: metrics in a real Prometheus, traces, logs.

One `mesh serve` on real Redis and Postgres, its processes exporting traces over OTLP to a
loopback receiver, with two provider keys set: the first provider rejects its key (echoing
it back, as some do) and the chain falls back to the second.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from meshcore.bootstrap import task_queues
from tests.e2e.server import AUTH, free_port, mesh_serve, poll, workers_ready
from tests.otlp_receiver import ReceivedSpan, Receiver, otlp_receiver
from tests.prometheus_server import prometheus
from tests.provider_server import provider_server

pytestmark = pytest.mark.e2e

REJECTED_KEY = "mesh-test-rejected-0123456789abcdef"
GOOD_KEY = "mesh-test-good-fedcba9876543210"
FIRST, SECOND = "anthropic/claude-3-7-sonnet-20250219", "openai/gpt-4o"


@dataclass
class Running:
    base: str
    metrics_port: int
    receiver: Receiver
    output: Path
    network_id: str
    workdir: Path


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Running]:
    url = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(url).flushdb()
    workdir = tmp_path_factory.mktemp("observability")
    output = workdir / "mesh.log"
    metrics_port = free_port()
    with provider_server() as provider, otlp_receiver() as receiver:
        provider.behave("claude-3-7-sonnet-20250219", default="401")
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "ANTHROPIC_API_KEY": REJECTED_KEY,
            "OPENAI_API_KEY": GOOD_KEY,
        }
        with mesh_serve(
            workdir / "data",
            env=env,
            output=output,
            database_url=database_url,
            redis_url=url,
            metrics_port=str(metrics_port),
            agent_workers="2",
            log_level="INFO",
            model_chain=json.dumps([FIRST, SECOND]),
            provider_api_bases=json.dumps(
                {"anthropic": provider.anthropic_base, "openai": provider.openai_base}
            ),
            breaker_failure_threshold="1000",  # keep calling the first: it is what we watch
        ) as base:
            with httpx.Client(base_url=base, timeout=10, headers=AUTH) as client:
                network_id = client.post("/api/mesh/networks", json={"name": "ops"}).json()["id"]
                workers_ready(client, network_id)
            yield Running(base, metrics_port, receiver, output, network_id, workdir)


def run_task(mesh: Running, description: str) -> dict:
    with httpx.Client(base_url=mesh.base, timeout=10, headers=AUTH) as client:
        submitted = client.post(
            f"/api/mesh/networks/{mesh.network_id}/tasks", json={"description": description}
        )
        assert submitted.status_code == 202, submitted.text
        return poll(client, submitted.headers["Location"])


def spans_of_task(receiver: Receiver, task_id: str) -> tuple[str, list[ReceivedSpan]]:
    """The trace holding the task's spans, once its critique has arrived."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        spans = receiver.snapshot()
        mine = [s for s in spans if s.attributes.get("mesh.task_id") == task_id]
        if any(s.name == "mesh.critique" for s in mine):
            traces = {s.trace_id for s in mine}
            assert len(traces) == 1, f"the task's own spans are in {len(traces)} traces"
            trace_id = traces.pop()
            time.sleep(1)  # the last batch of the trace's other spans
            return trace_id, [s for s in receiver.snapshot() if s.trace_id == trace_id]
        time.sleep(0.3)
    raise AssertionError("no critique span arrived for the task")


def test_every_span_of_a_task_shares_one_trace_across_the_queue_hops(mesh: Running) -> None:
    task = run_task(mesh, "Write the launch email for Mesh")
    assert task["status"] == "completed"
    trace_id, spans = spans_of_task(mesh.receiver, task["id"])
    names = [s.name for s in spans]

    # The HTTP request that submitted it is the root, in the API's process.
    roots = [s for s in spans if not s.parent_id]
    assert [(r.service, r.name) for r in roots] == [
        ("mesh-api", "POST /api/mesh/networks/<id(network):network_id>/tasks")
    ]
    # Every queue hop continued it: the coordinator, the five specialists, the fan-in, the
    # critic; and our own spans for each stage, with the model calls under them.
    for hop in ("coordinate", "collect", "review"):
        assert f"run/mesh.{hop}" in names, hop
    iterations = task["iteration"]
    assert names.count("run/mesh.run_agent") == 5 * iterations
    assert names.count("mesh.plan") == iterations
    assert names.count("mesh.agent_step") == 5 * iterations
    assert names.count("mesh.synthesis") == iterations
    assert names.count("mesh.critique") == iterations
    assert {s.service for s in spans} == {"mesh-api", "mesh-worker"}
    # Redis and SQLAlchemy are instrumented too.
    assert any(s.attributes.get("db.system") == "redis" for s in spans)
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans)

    calls = [s for s in spans if s.name == "mesh.model_call"]
    assert {
        (
            c.attributes["gen_ai.request.model"],
            c.attributes["gen_ai.system"],
            c.attributes["mesh.outcome"],
        )
        for c in calls
    } == {(FIRST, "anthropic", "error"), (SECOND, "openai", "success")}
    by_id = {s.span_id: s for s in spans}
    for call in calls:  # each under a stage of ours, never floating
        parent = call.parent_id
        while parent and not by_id[parent].name.startswith("mesh."):
            parent = by_id[parent].parent_id
        assert parent, "a model call outside any stage span"

    # Each synthesis links to exactly the agent steps it merged.
    for synthesis in (s for s in spans if s.name == "mesh.synthesis"):
        iteration = synthesis.attributes["mesh.iteration"]
        steps = {
            s.span_id
            for s in spans
            if s.name == "mesh.agent_step" and s.attributes["mesh.iteration"] == iteration
        }
        assert len(steps) == 5
        assert {span for _, span in synthesis.links} == steps
        assert {trace for trace, _ in synthesis.links} == {trace_id}


def test_a_real_prometheus_scrapes_the_api_and_the_workers(mesh: Running) -> None:
    api = mesh.base.removeprefix("http://")
    # The coordinator on the metrics port, the two agents workers on the ports after it.
    workers = [f"127.0.0.1:{mesh.metrics_port + i}" for i in range(3)]
    with prometheus(mesh.workdir, {"mesh-api": [api], "mesh-worker": workers}) as prom:
        deadline = time.monotonic() + 20  # each target's first scrape, before any assertion
        while set(prom.targets_up().values()) != {"up"} and time.monotonic() < deadline:
            time.sleep(0.3)
        before = _total(prom.query('sum(mesh_tasks_total{status="completed"})'))
        for i in range(3):
            assert run_task(mesh, f"Plan the launch, part {i}")["status"] == "completed"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = _total(prom.query('sum(mesh_tasks_total{status="completed"})'))
            if done >= before + 3:
                break
            time.sleep(0.5)
        assert done >= before + 3

        assert set(prom.targets_up().values()) == {"up"}
        queues = {
            r["metric"]["queue"]: float(r["value"][1]) for r in prom.query("mesh_queue_depth")
        }
        assert set(queues) == set(task_queues())  # every agent type's, agent.general too
        assert all(depth >= 0 for depth in queues.values())
        assert len(prom.query("mesh_queue_oldest_message_age_seconds")) == len(task_queues())
        assert _total(prom.query("sum(mesh_tasks_submitted_total)")) >= 3
        succeeded = prom.query('sum by (queue) (mesh_subtasks_total{outcome="succeeded"})')
        assert {r["metric"]["queue"] for r in succeeded} >= {"agent.content", "agent.critic"}
        assert _total(prom.query(f'sum(mesh_model_fallbacks_total{{model="{FIRST}"}})')) > 0
        assert (
            _total(prom.query(f'sum(mesh_model_calls_total{{model="{SECOND}",outcome="success"}})'))
            > 0
        )
        assert _total(prom.query('sum(mesh_http_requests_total{method="POST",status="202"})')) >= 3
        assert _total(prom.query("sum(mesh_critic_score_count)")) >= 3


def test_promtool_accepts_real_scrapes_of_the_api_and_a_worker(mesh: Running) -> None:
    for url in (f"{mesh.base}/metrics", f"http://127.0.0.1:{mesh.metrics_port + 1}/metrics"):
        scrape = httpx.get(url, timeout=10)
        assert scrape.status_code == 200
        assert "mesh_" in scrape.text
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=scrape.content, capture_output=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.strip() == b"" and checked.stderr.strip() == b"", url


def test_logs_are_json_with_the_task_context_and_never_a_key(mesh: Running) -> None:
    task = run_task(mesh, "Write the pricing page")
    trace_id, _ = spans_of_task(mesh.receiver, task["id"])
    time.sleep(1)
    text = mesh.output.read_text(errors="replace")
    assert REJECTED_KEY not in text and GOOD_KEY not in text
    assert "[redacted]" in text  # the provider's 401 named the key; the log did not

    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [e for e in lines if e.get("task_id") == task["id"]]
    steps = [e for e in mine if e["event"] == "step.recorded"]
    assert len(steps) >= 8  # plan, five specialists, synthesis, critique
    for event in mine:
        assert {
            "time",
            "level",
            "event",
            "task_id",
            "network_id",
            "agent",
            "queue",
            "trace_id",
        } <= set(event)
    for event in steps:
        assert event["trace_id"] == trace_id
        assert event["network_id"] == mesh.network_id
        assert event["queue"] and event["agent"]


def _total(result: list[dict]) -> float:
    return float(result[0]["value"][1]) if result else 0.0
