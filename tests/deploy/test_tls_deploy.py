"""k8s/ and compose.yaml keep operators' tools and secrets behind a door, and show where TLS
certificates go: Flower asks for a password from a Secret, nothing secret is in a ConfigMap,
and components/tls mounts the API's certificate and the CA where the settings point.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from meshcore.settings import Settings
from tests.deploy.kustomize import Resource, render_inline
from tests.deploy.test_k8s import (
    K8S,
    OVERLAYS,
    VARIANTS,
    containers,
    key,
    rendered,
    validate,
)

# The prod overlay with components/tls added, as an overlay that chooses it renders.
TLS_VARIANT = {"resources": ["overlays/prod"], "components": ["components/tls"]}
# What a ConfigMap entry must not be called: it would hold a credential in the clear.
SECRET_LOOKING = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|AUTH|CREDENTIAL|_URL$", re.IGNORECASE)
# ConfigMap entries that match but hold no secret.
NOT_SECRET = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


@cache
def rendered_tls() -> tuple[Resource, ...]:
    return tuple(render_inline(TLS_VARIANT, K8S))


def deployment(resources: tuple[Resource, ...], name: str) -> Resource:
    (found,) = [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == name]
    return found


def env_sources(container: Resource) -> dict[str, Resource]:
    return {e["name"]: e for e in container.get("env", [])}


def mounts(pod: Resource, container: Resource) -> dict[str, Resource]:
    """mountPath -> the volume mounted there."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}


@pytest.mark.parametrize("variant", VARIANTS)
def test_flower_asks_for_a_password_from_a_secret(variant: str) -> None:
    flower = deployment(rendered(variant), "mesh-flower")
    (container,) = flower["spec"]["template"]["spec"]["containers"]
    auth = env_sources(container)["FLOWER_BASIC_AUTH"]
    assert auth["valueFrom"]["secretKeyRef"] == {"name": "mesh-flower", "key": "FLOWER_BASIC_AUTH"}
    assert not any("basic" in part for part in container["command"])  # never in `ps`
    # The probes need no password: Flower leaves /healthcheck open.
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthcheck"


def test_the_secret_template_holds_flower_and_tls_placeholders() -> None:
    secrets = {
        s["metadata"]["name"]: s
        for s in yaml.safe_load_all((K8S / "base" / "secret.template.yaml").read_text())
    }
    assert set(secrets["mesh-flower"]["stringData"]) == {"FLOWER_BASIC_AUTH"}
    assert secrets["mesh-api-tls"]["type"] == "kubernetes.io/tls"
    assert set(secrets["mesh-api-tls"]["stringData"]) == {"tls.crt", "tls.key"}
    assert set(secrets["mesh-ca"]["stringData"]) == {"ca.crt"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_config_map_holds_anything_secret_looking(variant: str) -> None:
    for config in (r for r in rendered(variant) if r["kind"] == "ConfigMap"):
        for name in config["data"]:
            assert name in NOT_SECRET or not SECRET_LOOKING.search(name), name


@pytest.mark.parametrize("variant", VARIANTS)
def test_provider_and_data_keys_reach_pods_only_from_secrets(variant: str) -> None:
    template = yaml.safe_load_all((K8S / "base" / "secret.template.yaml").read_text())
    in_secret = {s["metadata"]["name"]: set(s["stringData"]) for s in template}
    configs = {
        r["metadata"]["name"]: r["data"] for r in rendered(variant) if r["kind"] == "ConfigMap"
    }
    secret_settings = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"}
    assert secret_settings <= in_secret["mesh-secrets"]
    for resource in rendered(variant):
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        for container in containers(resource["spec"]["template"]["spec"]):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    held = set(configs[source["configMapRef"]["name"]])
                    assert not held & (secret_settings | {"MESH_DATA_KEYS"}), container["name"]
            for name, source in env_sources(container).items():
                if name in secret_settings | {"MESH_DATA_KEYS"}:
                    assert "secretKeyRef" in source.get("valueFrom", {}), (name, container["name"])


def test_compose_flower_and_provider_keys_come_from_the_environment() -> None:
    compose = yaml.safe_load((K8S.parent / "compose.yaml").read_text())
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:-")
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        assert compose["x-mesh-env"][name] == f"${{{name}:-}}"


def test_the_tls_component_renders_valid_objects() -> None:
    for resource in rendered_tls():
        validate(resource)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_tls_renderer_agrees_with_kubectl_kustomize(tmp_path: Path) -> None:
    kustomization = {
        "resources": [os.path.relpath(K8S / "overlays/prod", tmp_path)],
        "components": [os.path.relpath(K8S / "components/tls", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    output = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], check=True, capture_output=True, text=True
    ).stdout
    theirs = sorted((d for d in yaml.safe_load_all(output) if d), key=key)
    assert sorted(rendered_tls(), key=key) == theirs


def test_the_api_serves_https_from_a_kubernetes_tls_secret() -> None:
    api = deployment(rendered_tls(), "mesh-api")
    pod = api["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {name: e.get("value") for name, e in env_sources(container).items()}
    by_path = mounts(pod, container)
    cert, key = Path(env["MESH_TLS_CERT_FILE"]), Path(env["MESH_TLS_KEY_FILE"])
    assert cert.parent == key.parent
    assert by_path[str(cert.parent)]["secret"]["secretName"] == "mesh-api-tls"
    assert {cert.name, key.name} == {"tls.crt", "tls.key"}  # a kubernetes.io/tls Secret's keys
    assert by_path[str(cert.parent)]["secret"]["defaultMode"] == 0o440
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
    assert api["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scheme"] == "https"
    (ingress,) = [r for r in rendered_tls() if r["kind"] == "Ingress"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == (
        "HTTPS"
    )


def test_every_mesh_pod_has_the_ca_where_its_settings_point() -> None:
    pods = [
        r
        for r in rendered_tls()
        if r["kind"] in ("Deployment", "Job") and r["metadata"]["name"] != "mesh-flower"
    ]
    assert len(pods) > 4
    for resource in pods:
        pod = resource["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ca = Path(env_sources(container)["MESH_REDIS_CA_FILE"]["value"])
        volume = mounts(pod, container)[str(ca.parent)]
        assert volume["secret"]["secretName"] == "mesh-ca", resource["metadata"]["name"]
        assert ca.name == "ca.crt"


def test_tls_settings_in_the_manifests_are_real_settings() -> None:
    fields = {f"MESH_{name.upper()}" for name in Settings.model_fields}
    for name in ("MESH_TLS_CERT_FILE", "MESH_TLS_KEY_FILE", "MESH_REDIS_CA_FILE"):
        assert name in fields


def test_overlays_without_the_component_serve_plain_http_inside_the_cluster() -> None:
    for overlay in OVERLAYS:
        api = deployment(rendered(overlay), "mesh-api")
        (container,) = api["spec"]["template"]["spec"]["containers"]
        assert "MESH_TLS_CERT_FILE" not in env_sources(container)
        assert "scheme" not in container["readinessProbe"]["httpGet"]
