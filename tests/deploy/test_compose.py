"""compose.yaml: valid against the Compose Specification, and the system it describes.

The schema is the Compose Specification's own (tests/deploy/schemas/compose-spec.json).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import ROOT

Service = dict[str, Any]
LONG_RUNNING = ("api", "redis", "postgres", "flower", "prometheus", "jaeger")


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def services() -> dict[str, Service]:
    return compose()["services"]


def environment(service: Service) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def workers() -> dict[str, Service]:
    return {
        name: service
        for name, service in services().items()
        if service.get("build", {}).get("dockerfile") == "Dockerfile.worker"
    }


def test_compose_file_matches_the_compose_specification_schema() -> None:
    schema = json.loads((ROOT / "tests/deploy/schemas/compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_check_catches_a_misspelt_key() -> None:
    schema = json.loads((ROOT / "tests/deploy/schemas/compose-spec.json").read_text())
    broken = {"services": {"api": {"image": "mesh-api", "helthcheck": {}}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_every_queue_has_exactly_one_worker_service(queues: tuple[str, ...]) -> None:
    consumed = [environment(w).get("MESH_WORKER_QUEUES") for w in workers().values()]
    assert sorted(consumed) == sorted(queues)


@pytest.mark.parametrize("name", ["api", *sorted(workers())])
def test_api_and_workers_wait_for_the_migration_and_healthy_servers(name: str) -> None:
    depends = services()[name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_agent_workers_use_a_threads_pool_with_high_concurrency() -> None:
    for name, service in workers().items():
        env = environment(service)
        # The image's default pool is threads; nothing may switch an agent pool to prefork.
        assert env.get("MESH_WORKER_POOL", "threads") == "threads", name
        if env["MESH_WORKER_QUEUES"].startswith("agent."):
            assert int(env["MESH_WORKER_CONCURRENCY"]) >= 16, name
        assert service["stop_grace_period"] == "10m", name


def test_worker_node_names_are_unique_so_each_health_check_pings_its_own() -> None:
    names = [environment(w)["MESH_WORKER_NAME"] for w in workers().values()]
    assert len(names) == len(set(names))


def test_exactly_one_worker_sends_the_periodic_sweep() -> None:
    beats = [name for name, w in workers().items() if "--beat" in w.get("command", [])]
    assert beats == ["worker-coordinator"]


def test_migration_runs_mesh_db_upgrade_once() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["mesh", "db", "upgrade"]
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_health_checks(name: str) -> None:
    healthcheck = services()[name]["healthcheck"]
    assert healthcheck["test"][0] in ("CMD", "CMD-SHELL")


def test_workers_keep_their_image_health_check() -> None:
    for name, service in workers().items():
        assert "healthcheck" not in service, f"{name} overrides the image's ping of its node"


def test_redis_keeps_an_append_only_file_and_never_evicts() -> None:
    command = " ".join(services()["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(v.endswith(":/data") for v in services()["redis"]["volumes"])


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    volume = services()["postgres"]["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]


def test_flower_watches_the_same_broker_on_port_5555() -> None:
    flower = services()["flower"]
    broker = environment(services()["api"])["MESH_REDIS_URL"]
    assert flower["command"][:3] == ["celery", f"--broker={broker}", "flower"]
    assert flower["ports"] == ["127.0.0.1:5555:5555"]


def test_flower_asks_for_a_password_the_operator_can_replace() -> None:
    flower = services()["flower"]
    auth = environment(flower)["FLOWER_BASIC_AUTH"]
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:-[^:}]+:[^}]+\}", auth), auth
    assert not any("basic" in part for part in flower["command"])  # never in `ps`


def test_api_and_workers_export_traces_to_the_collector() -> None:
    jaeger = services()["jaeger"]
    for name in ["api", *workers()]:
        env = environment(services()[name])
        endpoint = re.fullmatch(r"http://([\w-]+):(\d+)", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint, name
        host, port = endpoint.groups()
        assert host == "jaeger", name
        assert port in jaeger["expose"], name
        assert env["OTEL_SERVICE_NAME"].startswith("mesh-"), name


def test_prometheus_scrapes_the_api_and_every_worker_with_its_queue() -> None:
    mount = "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
    assert mount in services()["prometheus"]["volumes"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["mesh-api"]["static_configs"][0]["targets"] == ["api:8000"]
    scraped = {
        target: group["labels"]["worker_queue"]
        for group in jobs["mesh-worker"]["static_configs"]
        for target in group["targets"]
    }
    expected = {
        f"{name}:9100": environment(w)["MESH_WORKER_QUEUES"] for name, w in workers().items()
    }
    assert scraped == expected


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.search(r":[\w.-]+", image) and not image.endswith(":latest"), name
        if name != "flower":  # no published digest of mher/flower could be verified offline
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), name
