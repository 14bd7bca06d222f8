"""Mesh's metric names and labels, and what a PromQL expression uses of them.

The metrics are served by the API on :8000/metrics and by each worker on :9100/metrics; the
alerts, the dashboard and the docs use exactly these names. The parsing is a tokenizer, not a
PromQL parser: promtool checks that every expression parses, this module only tells which
metric names and label matchers an expression mentions.
"""

from __future__ import annotations

import re

# name -> the labels its series carry (target labels such as job and instance come on top).
METRICS: dict[str, frozenset[str]] = {
    "mesh_http_requests_total": frozenset({"route", "method", "status"}),
    "mesh_http_request_duration_seconds_bucket": frozenset({"route", "method", "le"}),
    "mesh_tasks_total": frozenset({"status"}),
    "mesh_tasks_submitted_total": frozenset(),
    "mesh_task_duration_seconds_bucket": frozenset({"status", "le"}),
    "mesh_subtasks_total": frozenset({"agent_type", "queue", "outcome"}),
    "mesh_subtask_duration_seconds_bucket": frozenset({"agent_type", "queue", "le"}),
    "mesh_queue_depth": frozenset({"queue"}),
    "mesh_queue_oldest_message_age_seconds": frozenset({"queue"}),
    "mesh_model_calls_total": frozenset({"model", "outcome"}),
    "mesh_model_call_duration_seconds_bucket": frozenset({"model", "le"}),
    "mesh_model_tokens_total": frozenset({"model", "direction"}),
    "mesh_model_cost_usd_total": frozenset({"model"}),
    "mesh_model_fallbacks_total": frozenset({"model"}),
    "mesh_breaker_state": frozenset({"model"}),
    "mesh_memory_operations_total": frozenset({"operation"}),
    "mesh_memory_confidence_sum": frozenset({"type"}),
    "mesh_memory_confidence_count": frozenset({"type"}),
    "mesh_critic_score_bucket": frozenset({"le"}),
    "mesh_task_rating_sum": frozenset(),
    "mesh_task_rating_count": frozenset(),
    "mesh_task_rating_bucket": frozenset({"le"}),
    "up": frozenset(),
}
# Labels Prometheus adds to every scraped series; worker_queue is set on worker targets by
# deploy/prometheus/prometheus*.yml.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "worker_queue"})

KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_DURATION = re.compile(r"(?<![\w:])\d+(?:ms|[smhdwy])(?![\w:])")
_NUMBER = re.compile(r"(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w:])", re.IGNORECASE)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (function names and keywords left out)."""
    text = _without_variables(expr)
    text = _STRING.sub('""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = _DURATION.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def selector_labels(expr: str) -> dict[str, set[str]]:
    """For each `metric{...}` selector, the label names it matches on."""
    text = _without_variables(expr)
    used: dict[str, set[str]] = {}
    for name, body in _SELECTOR.findall(text):
        used.setdefault(name, set()).update(_MATCHER.findall(_STRING.sub('""', body)))
    return used


def _without_variables(expr: str) -> str:
    """Grafana's $__rate_interval, ${var} and $var, replaced by something PromQL accepts."""
    text = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    text = re.sub(r"\$\{\w+(?::\w+)?\}|\$\w+", ".*", text)
    return text


def as_promql(expr: str) -> str:
    """The expression with Grafana's variables replaced, for promtool to parse."""
    return _without_variables(expr)
