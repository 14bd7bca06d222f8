"""Every deployment YAML file passes yamllint: no duplicate keys, no stray truthy values."""

from __future__ import annotations

from pathlib import Path

import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.deploy.conftest import ROOT

CONFIG = YamlLintConfig(file=str(Path(__file__).with_name("yamllint.yml")))
FILES = sorted(
    [
        ROOT / "compose.yaml",
        *(ROOT / "k8s").rglob("*.yaml"),
        *(ROOT / "deploy").rglob("*.yml"),
        *(ROOT / "deploy").rglob("*.yaml"),
    ]
)


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_yamllint_finds_nothing(path: Path) -> None:
    problems = list(linter.run(path.read_text(), CONFIG, str(path)))
    assert not problems, "\n".join(f"{p.line}:{p.column} {p.desc} ({p.rule})" for p in problems)
