"""A small renderer of the kustomize subset that k8s/ uses, so the overlays render offline.

Supported, with kustomize's meaning: `resources` (files and directories), `components`,
`namespace`, `images` (newName, newTag, digest) and `patches` (a file or inline, strategic
merge or JSON 6902, with an optional `target` of group, version, kind, name and
labelSelector). Anything else in a kustomization is refused rather than ignored. Strategic
merge here merges maps, merges the lists of containers, env, volumes and volume mounts by
name, replaces other lists and deletes a key patched to null: what k8s/ relies on.
tests/deploy/test_k8s.py checks that this agrees with `kubectl kustomize` where kubectl is
installed.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "images",
    "patches",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "IngressClass",
}
MERGE_BY_NAME = {"containers", "initContainers", "env", "volumes", "volumeMounts"}


class KustomizeError(Exception):
    """A kustomization uses something this renderer does not do, or is wrong."""


def render(directory: Path) -> list[Resource]:
    """Every resource the kustomization in `directory` produces, transformed."""
    kustomization = _load_kustomization(directory)
    if kustomization.get("kind") == "Component":
        raise KustomizeError(f"{directory} is a Component; render a Kustomization")
    return _build(directory, kustomization, [])


def render_inline(kustomization: Resource, directory: Path) -> list[Resource]:
    """What a kustomization given as data, with its paths relative to `directory`, produces."""
    return _build(directory, kustomization, [])


def _build(directory: Path, kustomization: Resource, accumulated: list[Resource]) -> list[Resource]:
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: unsupported fields {sorted(unknown)}")
    resources = accumulated
    for entry in kustomization.get("resources", []):
        resources.extend(_load_resources(directory / entry))
    for entry in kustomization.get("components", []):
        component_dir = directory / entry
        component = _load_kustomization(component_dir)
        if component.get("kind") != "Component":
            raise KustomizeError(f"{component_dir} is listed as a component but is not one")
        resources = _build(component_dir, component, resources)
    for patch in kustomization.get("patches", []):
        _apply_patch(directory, patch, resources)
    for image in kustomization.get("images", []):
        _set_image(image, resources)
    if "namespace" in kustomization:
        _set_namespace(kustomization["namespace"], resources)
    return resources


def _load_kustomization(directory: Path) -> Resource:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            return yaml.safe_load(path.read_text())
    raise KustomizeError(f"no kustomization in {directory}")


def _load_resources(path: Path) -> list[Resource]:
    if path.is_dir():
        return render(path)
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _apply_patch(directory: Path, spec: Resource, resources: list[Resource]) -> None:
    text = (directory / spec["path"]).read_text() if "path" in spec else spec["patch"]
    patch = yaml.safe_load(text)
    if isinstance(patch, list):
        if "target" not in spec:
            raise KustomizeError(f"{directory}: a JSON 6902 patch needs a target")
        targets = [r for r in resources if _matches(r, spec["target"])]
        for resource in targets:
            _apply_json6902(resource, patch)
    else:
        target = spec.get("target") or {
            "kind": patch["kind"],
            "name": re.escape(patch["metadata"]["name"]),
        }
        targets = [r for r in resources if _matches(r, target)]
        for resource in targets:
            _merge(resource, patch)
    if not targets:
        raise KustomizeError(f"{directory}: a patch matched no resource")


def _matches(resource: Resource, target: Resource) -> bool:
    group, _, version = resource["apiVersion"].rpartition("/")
    checks = {
        "group": group,
        "version": version,
        "kind": resource["kind"],
        "name": resource["metadata"]["name"],
        "namespace": resource["metadata"].get("namespace", ""),
    }
    for key, value in target.items():
        if key == "labelSelector":
            labels = resource["metadata"].get("labels", {})
            wanted = dict(pair.split("=", 1) for pair in value.split(","))
            if any(labels.get(k) != v for k, v in wanted.items()):
                return False
        elif key in checks:
            if not re.fullmatch(str(value), checks[key]):
                return False
        else:
            raise KustomizeError(f"unsupported target field {key}")
    return True


def _merge(base: Resource, patch: Resource) -> None:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif key in MERGE_BY_NAME and isinstance(value, list) and isinstance(base.get(key), list):
            _merge_named(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _merge_named(base: list[Resource], patch: list[Resource]) -> None:
    by_name = {item["name"]: item for item in base}
    for item in patch:
        if item["name"] in by_name:
            _merge(by_name[item["name"]], item)
        else:
            base.append(copy.deepcopy(item))


def _apply_json6902(resource: Resource, operations: list[Resource]) -> None:
    for operation in operations:
        *parents, last = _pointer(operation["path"])
        node: Any = resource
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        op = operation["op"]
        if op in ("add", "replace") and isinstance(node, list):
            value = copy.deepcopy(operation["value"])
            if last == "-":
                node.append(value)
            elif op == "add":
                node.insert(int(last), value)
            else:
                node[int(last)] = value
        elif op in ("add", "replace"):
            if op == "replace" and last not in node:
                raise KustomizeError(f"replace of a missing path {operation['path']}")
            node[last] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise KustomizeError(f"unsupported JSON 6902 op {op}")


def _pointer(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.lstrip("/").split("/")]


def _set_image(image: Resource, resources: list[Resource]) -> None:
    for resource in resources:
        for container in _containers(resource):
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                container["image"] = name + (f"@{digest}" if digest else f":{tag}" if tag else "")


def _split_image(reference: str) -> tuple[str, str, str]:
    name, _, digest = reference.partition("@")
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag, digest
    return name, "", digest


def _containers(resource: Resource) -> list[Resource]:
    spec = resource.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    if resource["kind"] == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_namespace(namespace: str, resources: list[Resource]) -> None:
    for resource in resources:
        if resource["kind"] == "Namespace":
            resource["metadata"]["name"] = namespace
        elif resource["kind"] not in CLUSTER_SCOPED_KINDS:
            resource["metadata"]["namespace"] = namespace


def main(argv: list[str]) -> int:
    """`python -m tests.deploy.kustomize DIR`: print what DIR renders, as `kubectl kustomize`."""
    if len(argv) != 1:
        print("usage: python -m tests.deploy.kustomize <directory with a kustomization>")
        return 2
    print(yaml.safe_dump_all(render(Path(argv[0])), sort_keys=True), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
