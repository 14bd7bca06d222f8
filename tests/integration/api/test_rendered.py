"""An ended task's answer is kept as it was sent: the next plain read of it at the same
revision runs no SQL and answers the same bytes; it is never served to another tenant, for a
deleted network, or for a task that has not ended."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.integration.api.client import NETWORKS, ApiClient, bearer, new_key
from tests.integration.api.record import Record

pytestmark = pytest.mark.integration


def task_url(task: dict[str, Any]) -> str:
    return f"{NETWORKS}/{task['network_id']}/tasks/{task['id']}"


@pytest.fixture
def ended_task(client: ApiClient, queued_task: dict[str, Any]) -> dict[str, Any]:
    return client.post(f"{task_url(queued_task)}/cancel").get_json()


@pytest.mark.parametrize("view", ["", "?view=summary"])
def test_an_ended_tasks_second_read_runs_no_sql_and_answers_the_same(
    client: ApiClient, ended_task: dict[str, Any], statements: list[str], view: str
) -> None:
    first = client.get(f"{task_url(ended_task)}{view}")
    statements.clear()

    second = client.get(f"{task_url(ended_task)}{view}")

    assert second.status_code == 200
    assert second.get_data() == first.get_data()
    assert second.headers["ETag"] == first.headers["ETag"] == f'"{ended_task["revision"]}"'
    assert statements == []


def test_a_task_that_has_not_ended_is_read_from_the_record_each_time(
    client: ApiClient, queued_task: dict[str, Any], statements: list[str]
) -> None:
    client.get(task_url(queued_task))
    statements.clear()

    assert client.get(task_url(queued_task)).get_json()["status"] == "queued"
    assert statements != []


def test_another_tenants_key_is_not_answered_from_what_was_kept(
    client: ApiClient, app: Flask, ended_task: dict[str, Any], record: Record
) -> None:
    assert client.get(task_url(ended_task)).status_code == 200  # kept
    other = bearer(new_key(app, f"{record.tenant}-other"))

    assert client.get(task_url(ended_task), headers=other).status_code == 404
    assert client.get(f"{task_url(ended_task)}?view=summary", headers=other).status_code == 404


def test_a_deleted_networks_task_is_not_answered_from_what_was_kept(
    client: ApiClient, ended_task: dict[str, Any]
) -> None:
    assert client.get(task_url(ended_task)).status_code == 200  # kept

    assert client.delete(f"{NETWORKS}/{ended_task['network_id']}").status_code == 204

    assert client.get(task_url(ended_task)).status_code == 404
