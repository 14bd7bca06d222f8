"""k8s/: every overlay renders, every object is valid, and the fleet is the one we mean.

Rendering is tests/deploy/kustomize.py, checked against `kubectl kustomize` where kubectl is
installed. Built-in kinds are validated by kubernetes-validate (strict: unknown fields fail)
against one pinned Kubernetes version; KEDA's objects against KEDA's own CRD schemas, vendored
in tests/deploy/schemas, made strict the same way.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kombu.transport.redis import PRIORITY_STEPS, Channel

from meshcore.settings import Settings
from tests.deploy.conftest import ROOT
from tests.deploy.kustomize import Resource, render, render_inline

KUBERNETES_VERSION = "1.33.0"
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
# The base with the HPA alternative instead of KEDA, as an overlay choosing it renders.
HPA_VARIANT = ("base", "components/queue-hpa")
KEDA_CRDS = ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml")
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# Environment variables that are not Settings fields: the worker entrypoint's, and the
# workers' metrics port (MESH_METRICS_PORT, served by the metrics work on :9100).
NON_SETTINGS_ENV = {
    "MESH_WORKER_QUEUES",
    "MESH_WORKER_NAME",
    "MESH_WORKER_POOL",
    "MESH_METRICS_PORT",
}
# What can be deployed: each overlay, and the base with the HPA alternative.
VARIANTS = (*OVERLAYS, "queue-hpa")


@cache
def rendered(variant: str) -> tuple[Resource, ...]:
    if variant == "queue-hpa":
        base, component = HPA_VARIANT
        return tuple(render_inline({"resources": [base], "components": [component]}, K8S))
    return tuple(render(K8S / "overlays" / variant))


def of_kind(variant: str, kind: str) -> list[Resource]:
    return [r for r in rendered(variant) if r["kind"] == kind]


def pod_specs(variant: str) -> Iterator[tuple[Resource, Resource]]:
    for resource in rendered(variant):
        if resource["kind"] in POD_KINDS:
            yield resource, resource["spec"]["template"]["spec"]


def containers(pod: Resource) -> list[Resource]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def env_of(container: Resource) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def worker_deployments(variant: str) -> dict[str, Resource]:
    """queue -> its scaled worker Deployment."""
    result = {}
    for deployment in of_kind(variant, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/component") == "worker":
            assert labels["queue"] not in result, f"two Deployments for {labels['queue']}"
            result[labels["queue"]] = deployment
    return result


@cache
def crd_schema(kind: str) -> Resource:
    for name in KEDA_CRDS:
        crd = yaml.safe_load((ROOT / "tests/deploy/schemas" / name).read_text())
        if crd["spec"]["names"]["kind"] == kind:
            version = next(v for v in crd["spec"]["versions"] if v["served"] and v["storage"])
            return strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    raise KeyError(kind)


def strict(schema: Resource) -> Resource:
    """Unknown fields fail, as `kubectl apply --validate=strict` makes them."""
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def validate(resource: Resource) -> None:
    """Raise if the object is not valid for the pinned Kubernetes version or KEDA's CRD."""
    if resource["apiVersion"].startswith("keda.sh/"):
        jsonschema.Draft7Validator(crd_schema(resource["kind"])).validate(resource)
        metadata = resource["metadata"]
        assert set(metadata) <= {"name", "namespace", "labels", "annotations"}
    else:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def key(resource: Resource) -> tuple[str, str, str, str]:
    metadata = resource["metadata"]
    return (
        resource["apiVersion"],
        resource["kind"],
        metadata.get("namespace", ""),
        metadata["name"],
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("variant", VARIANTS)
def test_renderer_agrees_with_kubectl_kustomize(variant: str, tmp_path: Path) -> None:
    directory = K8S / "overlays" / variant
    if variant == "queue-hpa":
        directory = tmp_path
        # kustomize takes only relative paths.
        base, component = (os.path.relpath(K8S / p, tmp_path) for p in HPA_VARIANT)
        kustomization = {"resources": [base], "components": [component]}
        (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=True
    )
    theirs = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=key)
    assert sorted(rendered(variant), key=key) == theirs


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid(variant: str) -> None:
    failures = []
    for resource in rendered(variant):
        try:
            validate(resource)
        except (jsonschema.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            failures.append(f"{key(resource)}: {getattr(exc, 'message', exc)}")
    assert not failures, "\n".join(failures)


def test_secret_template_is_a_valid_secret_of_placeholders() -> None:
    secrets = list(yaml.safe_load_all((K8S / "base" / "secret.template.yaml").read_text()))
    for secret in secrets:
        validate(secret)
        for name, value in secret["stringData"].items():
            assert value == "" or "REPLACE_ME" in value or "example" in value, name
    keys = set(secrets[0]["stringData"])
    assert {"MESH_DATABASE_URL", "MESH_REDIS_URL", "ANTHROPIC_API_KEY"} <= keys


def test_validation_rejects_unknown_fields() -> None:
    deployment = copy.deepcopy(of_kind("prod", "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(of_kind("prod", "ScaledObject")[0])
    scaled["spec"]["triggers"][0]["metdata"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_queue_has_a_worker_deployment_consuming_it(
    variant: str, queues: tuple[str, ...]
) -> None:
    deployments = worker_deployments(variant)
    assert sorted(deployments) == sorted(queues)
    for queue, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert env_of(container)["MESH_WORKER_QUEUES"] == queue
        assert env_of(container)["MESH_WORKER_POOL"] == "threads"
        assert "replicas" not in deployment["spec"], "the scaler owns the replica count"


def redis_lists(queue: str) -> set[str]:
    """The Redis lists that hold a queue's messages: one per priority step (kombu)."""
    return {f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_worker_on_every_redis_list_of_its_queue(
    overlay: str, queues: tuple[str, ...]
) -> None:
    deployments = worker_deployments(overlay)
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(overlay, "ScaledObject")}
    auth = {a["metadata"]["name"] for a in of_kind(overlay, "TriggerAuthentication")}
    for queue in queues:
        scaler = scaled[deployments[queue]["metadata"]["name"]]
        triggers = scaler["spec"]["triggers"]
        assert {t["type"] for t in triggers} == {"redis"}
        assert {t["metadata"]["listName"] for t in triggers} == redis_lists(queue)
        for trigger in triggers:
            assert int(trigger["metadata"]["listLength"]) > 0
            assert trigger["authenticationRef"]["name"] in auth
        assert scaler["spec"]["minReplicaCount"] >= 1
    # KEDA makes the workers' HPAs itself: a second one would fight it.
    hpas = [
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(overlay, "HorizontalPodAutoscaler")
    ]
    assert hpas == ["mesh-api"]


def test_the_hpa_alternative_scales_each_worker_on_its_queue_depth(
    queues: tuple[str, ...],
) -> None:
    deployments = worker_deployments("queue-hpa")
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind("queue-hpa", "HorizontalPodAutoscaler")
    }
    assert not of_kind("queue-hpa", "ScaledObject")
    for queue in queues:
        (metric,) = hpas[deployments[queue]["metadata"]["name"]]["spec"]["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == "mesh_queue_depth"
        assert metric["external"]["metric"]["selector"]["matchLabels"] == {"queue": queue}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_has_requests_and_limits(variant: str) -> None:
    for resource, pod in pod_specs(variant):
        for container in containers(pod):
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), (
                    f"{resource['metadata']['name']}/{container['name']} {bound}"
                )


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_container_runs_non_root_read_only_and_unprivileged(variant: str) -> None:
    for resource, pod in pod_specs(variant):
        pod_context = pod.get("securityContext", {})
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.get("automountServiceAccountToken") is False
        for container in containers(pod):
            context = {**pod_context, **container.get("securityContext", {})}
            where = f"{resource['metadata']['name']}/{container['name']}"
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser", 0) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where


def test_api_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    (api,) = [d for d in of_kind("prod", "Deployment") if d["metadata"]["name"] == "mesh-api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["lifecycle"]["preStop"]


def test_api_scales_on_cpu_and_keeps_pods_through_disruptions() -> None:
    (hpa,) = of_kind("prod", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mesh-api"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2
    budgets = {p["metadata"]["name"]: p for p in of_kind("prod", "PodDisruptionBudget")}
    assert budgets["mesh-api"]["spec"]["maxUnavailable"] == 1


def test_workers_get_600_seconds_to_finish_their_steps() -> None:
    for deployment in of_kind("prod", "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in ("worker", "beat"):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["terminationGracePeriodSeconds"] >= 600
            probe = pod["containers"][0]["livenessProbe"]["exec"]["command"][-1]
            assert '--destination "$MESH_WORKER_NAME@$HOSTNAME"' in probe


def test_one_beat_sends_the_periodic_sweep() -> None:
    beats = [
        d
        for d in of_kind("prod", "Deployment")
        if "--beat" in d["spec"]["template"]["spec"]["containers"][0].get("args", [])
    ]
    assert [b["metadata"]["name"] for b in beats] == ["mesh-beat"]
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_migration_job_runs_mesh_db_upgrade() -> None:
    (job,) = of_kind("prod", "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mesh", "db", "upgrade"]
    assert container["image"] == "registry.example.com/mesh/mesh-api:0.1.0"


def test_selectors_match_their_pods_and_services_reach_named_ports() -> None:
    templates = []
    for deployment in of_kind("prod", "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items()
        templates.append(template)
    for service in of_kind("prod", "Service"):
        selector = service["spec"]["selector"].items()
        matched = [t for t in templates if selector <= t["metadata"]["labels"].items()]
        assert matched, service["metadata"]["name"]
        ports = [p for t in matched for c in t["spec"]["containers"] for p in c["ports"]]
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in {p["name"] for p in ports}


def test_ingress_serves_the_api_over_tls_only_under_api_mesh() -> None:
    (ingress,) = of_kind("prod", "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    assert ingress["spec"]["tls"][0]["secretName"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/api/mesh"
    assert path["backend"]["service"] == {"name": "mesh-api", "port": {"name": "http"}}
    (dev_ingress,) = of_kind("dev", "Ingress")
    assert dev_ingress["spec"]["rules"][0]["host"] == dev_ingress["spec"]["tls"][0]["hosts"][0]


def policy_ports(policy: Resource, direction: str) -> set[int]:
    return {p["port"] for rule in policy["spec"].get(direction, []) for p in rule.get("ports", [])}


def test_network_policies_deny_by_default_and_open_only_what_mesh_uses() -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind("prod", "NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    assert policy_ports(policies["allow-dns"], "egress") == {53}
    assert policy_ports(policies["allow-api-ingress"], "ingress") == {8000}
    assert policy_ports(policies["allow-prometheus-scrape"], "ingress") >= {8000, 9100}
    assert policy_ports(policies["allow-datastores-egress"], "egress") == {6379, 5432}
    assert policy_ports(policies["allow-model-providers-egress"], "egress") == {443}
    providers = policies["allow-model-providers-egress"]["spec"]["podSelector"]
    assert "api" not in providers["matchExpressions"][0]["values"], "the API calls no model"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlay_namespace(overlay: str) -> None:
    (namespace,) = of_kind(overlay, "Namespace")
    for resource in rendered(overlay):
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize(("overlay", "tag"), [("dev", "dev"), ("prod", "0.1.0")])
def test_mesh_images_come_from_the_overlay_registry_and_tag(overlay: str, tag: str) -> None:
    for _, pod in pod_specs(overlay):
        for container in containers(pod):
            image = container["image"]
            if not image.startswith("mher/flower:"):
                assert image.startswith("registry.example.com/mesh/mesh-"), image
                assert image.endswith(f":{tag}"), image


def test_config_map_sets_only_real_settings() -> None:
    fields = {f"MESH_{name.upper()}" for name in Settings.model_fields}
    for overlay in OVERLAYS:
        (config,) = of_kind(overlay, "ConfigMap")
        for name in config["data"]:
            if name.startswith("MESH_"):
                assert name in fields | NON_SETTINGS_ENV, name
    for _, pod in pod_specs("prod"):
        for container in containers(pod):
            for name in env_of(container):
                if name.startswith("MESH_"):
                    assert name in fields | NON_SETTINGS_ENV, name


def test_visibility_timeout_exceeds_the_longest_step() -> None:
    (config,) = of_kind("prod", "ConfigMap")
    data: dict[str, Any] = config["data"]
    assert int(data["MESH_VISIBILITY_TIMEOUT_SECONDS"]) > int(data["MESH_TIMEOUT_SECONDS"])
    assert int(data["MESH_VISIBILITY_TIMEOUT_SECONDS"]) > 600
