"""deploy/prometheus: the alert rules, their unit tests and the scrape configuration.

promtool (Debian's `prometheus` package) checks the rules and the configuration and runs the
rules' unit tests (alerts_test.yml); the rest checks what the rules refer to.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import ROOT, tool
from tests.deploy.promql import METRICS, TARGET_LABELS, metric_names, selector_labels

PROMETHEUS = ROOT / "deploy" / "prometheus"
REQUIRED_ALERTS = {
    "MeshApiHighErrorRate",
    "MeshApiHighLatency",
    "MeshQueueOldMessages",
    "MeshModelBreakerOpen",
    "MeshTasksTimingOut",
    "MeshQueueNoWorker",
}


@cache
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_scrape_configuration_and_its_rule_files() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_the_operators_need_exist() -> None:
    missing = REQUIRED_ALERTS - {rule["alert"] for rule in rules()}
    assert not missing


def test_every_alert_is_shown_firing_by_a_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules()} == firing


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: f"{rule['alert']}")
def test_alert_uses_only_mesh_metrics_and_their_labels(rule: dict[str, Any]) -> None:
    assert metric_names(rule["expr"]) <= set(METRICS)
    for metric, labels in selector_labels(rule["expr"]).items():
        assert labels <= METRICS[metric] | TARGET_LABELS, metric


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: f"{rule['alert']}")
def test_alert_has_a_severity_and_a_runbook_section(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    page, _, anchor = rule["annotations"]["runbook"].partition("#")
    assert page == "docs/operations.md"
    assert anchor in heading_anchors(), f"no section #{anchor} in {page}"


def heading_anchors() -> set[str]:
    """The anchors GitHub gives the headings of docs/operations.md."""
    anchors = set()
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors
