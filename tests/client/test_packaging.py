"""meshclient installs alone: its metadata declares httpx as its only dependency."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import meshclient

PYPROJECT = Path(__file__).resolve().parents[2] / "meshclient" / "pyproject.toml"


def test_pip_install_of_meshclient_needs_only_httpx() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]

    assert project["name"] == "meshclient"
    assert project["version"] == meshclient.__version__ == "0.1.0"
    assert project["requires-python"] == ">=3.11"
    assert project["dependencies"] == ["httpx==0.28.1"]
    assert "optional-dependencies" not in project


def test_the_package_imports_nothing_of_mesh_itself() -> None:
    package = Path(meshclient.__file__).parent
    sources = "\n".join(path.read_text() for path in package.glob("*.py"))

    imported = set(re.findall(r"^\s*(?:from|import) (\w+)", sources, flags=re.MULTILINE))

    assert imported <= {"__future__", "meshclient", "httpx", *sys.stdlib_module_names}
