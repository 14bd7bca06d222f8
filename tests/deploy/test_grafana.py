"""deploy/grafana/mesh.json: a dashboard whose every query parses and uses Mesh's metrics."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import ROOT, tool
from tests.deploy.promql import METRICS, TARGET_LABELS, as_promql, metric_names, selector_labels

DASHBOARD = ROOT / "deploy" / "grafana" / "mesh.json"


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions() -> list[str]:
    """Every PromQL expression: the panels' targets and the query variables."""
    exprs = [t["expr"] for p in panels() for t in p.get("targets", [])]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(metric, label) names a metric the same way a selector does.
            query = variable["query"]["query"]
            exprs.append(query.removeprefix("label_values(").split(",")[0])
    return exprs


def test_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] == "Mesh"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_every_query_uses_only_mesh_metrics_and_their_labels() -> None:
    for expr in expressions():
        assert metric_names(expr) <= set(METRICS), expr
        for metric, labels in selector_labels(expr).items():
            assert labels <= METRICS[metric] | TARGET_LABELS, expr


def test_every_mesh_metric_has_a_panel() -> None:
    used = set().union(*(metric_names(expr) for expr in expressions()))
    assert used == set(METRICS)


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana's variables filled in) as a recording rule."""
    rules = [
        {"record": f"mesh:dashboard_query_{i}", "expr": as_promql(expr)}
        for i, expr in enumerate(expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
