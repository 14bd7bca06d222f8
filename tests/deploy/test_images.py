"""Dockerfile.api, Dockerfile.worker, .dockerignore and the worker's entrypoint.

No Docker engine here: hadolint lints the Dockerfiles, the rest is read from the files, and
the entrypoint runs against a stand-in `mesh` that prints what it was given.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, tool

DOCKERFILES = ("Dockerfile.api", "Dockerfile.worker")
PINNED_PYTHON = re.compile(r"python:3\.11(\.\d+)?-slim-bookworm@sha256:[0-9a-f]{64}")
ENTRYPOINT = ROOT / "deploy" / "docker" / "worker-entrypoint.sh"


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def final_stage(name: str) -> list[tuple[str, str]]:
    steps = instructions(name)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword == "ENV":
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', rest):
                env[key] = value.strip('"')
    return env


def test_hadolint_passes_with_no_finding_at_any_level() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "style", *DOCKERFILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_build_wheels_in_one_stage_and_run_from_a_slim_pinned_base(name: str) -> None:
    steps = instructions(name)
    args = dict(rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest)
    assert PINNED_PYTHON.fullmatch(args["PYTHON_IMAGE"])
    stages = [rest for keyword, rest in steps if keyword == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"]
    builder = steps[: next(i for i, s in enumerate(steps) if s[1].endswith("AS runtime"))]
    assert any(k == "RUN" and "pip wheel" in rest for k, rest in builder)
    runtime = final_stage(name)
    assert any(
        k == "RUN" and "from=builder" in rest and "--no-index" in rest for k, rest in runtime
    )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_images_run_as_a_non_root_user_with_the_runtime_environment(name: str) -> None:
    runtime = final_stage(name)
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    env = env_of(runtime)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert any(keyword == "HEALTHCHECK" for keyword, _ in runtime)


def test_api_image_serves_gunicorn_with_its_config_and_checks_healthz() -> None:
    runtime = final_stage("Dockerfile.api")
    cmd = next(rest for keyword, rest in runtime if keyword == "CMD")
    assert "gunicorn 'meshapi.app:create_app()'" in cmd
    # The config file picks the gevent workers; a --worker-class here would override it.
    assert "--config python:meshapi.gunicorn_conf" in cmd
    assert "--worker-class" not in cmd
    assert "0.0.0.0:${MESH_PORT}" in cmd
    healthcheck = next(rest for keyword, rest in runtime if keyword == "HEALTHCHECK")
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck


def test_worker_image_pings_its_own_celery_node() -> None:
    runtime = final_stage("Dockerfile.worker")
    assert ("ENTRYPOINT", '["mesh-worker"]') in runtime
    healthcheck = next(rest for keyword, rest in runtime if keyword == "HEALTHCHECK")
    assert "inspect ping" in healthcheck
    # The node name the entrypoint gives Celery: NAME@%h, where %h is the hostname.
    assert '--destination \\"$MESH_WORKER_NAME@${HOSTNAME:-$(hostname)}\\"' in healthcheck


def test_dockerignore_admits_everything_the_images_copy_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the context should start from nothing"
    admitted = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for name in DOCKERFILES:
        for keyword, rest in instructions(name):
            if keyword != "COPY" or "--from=" in rest:
                continue
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            for source in sources:
                assert any(fnmatch.fnmatch(source.rstrip("/"), p) for p in admitted), source
    assert ".venv" not in admitted and ".git" not in admitted


def run_entrypoint(tmp_path: Path, env: dict[str, str], *args: str) -> list[str]:
    """The argv the entrypoint hands to `mesh`, one argument a line."""
    stub = tmp_path / "mesh"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stub.chmod(0o755)
    environment = {"PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin", **env}
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.splitlines()


def test_worker_entrypoint_takes_queues_pool_and_name_from_the_environment(
    tmp_path: Path,
) -> None:
    env = {"MESH_WORKER_QUEUES": "agent.content", "MESH_WORKER_NAME": "content"}
    argv = run_entrypoint(tmp_path, env)
    assert argv == [
        "worker",
        "--queues",
        "agent.content",
        "--pool",
        "threads",
        "--hostname",
        "content@%h",
    ]


def test_worker_entrypoint_passes_arguments_on_after_the_environment(tmp_path: Path) -> None:
    env = {"MESH_WORKER_QUEUES": "coordinator", "MESH_WORKER_POOL": "prefork"}
    argv = run_entrypoint(tmp_path, env, "--beat", "--concurrency", "4")
    assert argv == [
        "worker",
        "--queues",
        "coordinator",
        "--pool",
        "prefork",
        "--hostname",
        "mesh@%h",
        "--beat",
        "--concurrency",
        "4",
    ]


def test_worker_entrypoint_with_no_queues_consumes_every_queue(tmp_path: Path) -> None:
    argv = run_entrypoint(tmp_path, {"MESH_WORKER_QUEUES": ""})
    assert "--queues" not in argv
