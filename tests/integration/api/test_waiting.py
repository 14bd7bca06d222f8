"""How a client waits on a task: ETags, conditional GETs, long polls, the compact view, the
event stream and cancel, on real Postgres and Redis (no worker: changes come from the API)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from meshcore.settings import Settings
from tests.integration.api.client import NETWORKS, ApiClient, bearer, new_key
from tests.integration.api.record import Record
from tests.integration.api.test_reading import run_two_waves

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    # Quick heartbeats, and few stream slots so that running out is cheap to show.
    return settings.model_copy(update={"stream_heartbeat_seconds": 0.3, "max_streams": 3})


def task_url(task: dict[str, Any]) -> str:
    return f"{NETWORKS}/{task['network_id']}/tasks/{task['id']}"


def test_every_read_carries_the_revision_as_a_strong_etag(
    client: ApiClient, network: dict[str, Any]
) -> None:
    submitted = client.post(
        f"{NETWORKS}/{network['id']}/tasks", json={"description": "Write it", "auto_process": False}
    )
    assert submitted.headers["ETag"] == '"1"'  # a client may wait on it from its first answer
    queued_task = submitted.get_json()
    response = client.get(task_url(queued_task))

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json()["revision"] == 1
    assert [h["seq"] for h in response.get_json()["history"]] == [1]
    processed = client.post(f"{task_url(queued_task)}/process")
    assert client.get(task_url(queued_task)).headers["ETag"] == f'"{processed.json["revision"]}"'
    assert processed.get_json()["revision"] == 2


def test_a_conditional_get_of_an_unchanged_task_runs_no_sql(
    client: ApiClient, queued_task: dict[str, Any], statements: list[str]
) -> None:
    etag = client.get(task_url(queued_task)).headers["ETag"]  # also: the key is now verified
    statements.clear()

    response = client.get(task_url(queued_task), headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == etag
    assert statements == []


def test_a_conditional_get_of_a_changed_task_answers_it(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    client.post(f"{task_url(queued_task)}/process")

    response = client.get(task_url(queued_task), headers={"If-None-Match": '"1"'})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.get_json()["history"][-1]["kind"] == "released"


def test_after_names_the_revision_as_if_none_match_does(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    assert client.get(f"{task_url(queued_task)}?after=1").status_code == 304
    assert client.get(f"{task_url(queued_task)}?after=0").status_code == 200


def test_redis_without_the_revision_is_answered_from_the_record(
    client: ApiClient, queued_task: dict[str, Any], redis_client: Any, tenant: str
) -> None:
    for key in redis_client.scan_iter(match=f"mesh:{tenant}:*:rev:*"):
        redis_client.delete(key)

    assert client.get(task_url(queued_task), headers={"If-None-Match": '"1"'}).status_code == 304


def test_the_summary_view_is_the_task_in_a_few_fields(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    response = client.get(f"{task_url(queued_task)}?view=summary")

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json() == {
        "id": queued_task["id"],
        "network_id": queued_task["network_id"],
        "status": "queued",
        "revision": 1,
        "iteration": 0,
        "wave": 1,
        "progress": {"done": 0, "planned": 0},
        "answer": None,
        "score": None,
    }
    assert len(response.get_data()) < 400


def test_a_long_poll_answers_as_soon_as_the_task_changes(
    client: ApiClient, app: Flask, api_key: str, queued_task: dict[str, Any]
) -> None:
    other = app.test_client()
    changed_at: list[float] = []

    def change() -> None:
        time.sleep(0.5)
        other.post(f"{task_url(queued_task)}/process", headers=bearer(api_key))
        changed_at.append(time.monotonic())

    changer = threading.Thread(target=change)
    changer.start()
    response = client.get(
        f"{task_url(queued_task)}?wait=20&view=summary", headers={"If-None-Match": '"1"'}
    )
    answered_at = time.monotonic()
    changer.join()

    assert response.status_code == 200
    assert response.get_json()["revision"] == 2
    # Woken by the change, not by the 20 s bound (`make bench` measures how soon).
    assert answered_at - changed_at[0] < 2


def test_a_long_poll_until_ended_answers_at_the_end_not_at_each_change(
    client: ApiClient, app: Flask, api_key: str, queued_task: dict[str, Any]
) -> None:
    other = app.test_client()
    cancelled_at: list[float] = []

    def change_then_end() -> None:
        time.sleep(0.3)
        other.post(f"{task_url(queued_task)}/process", headers=bearer(api_key))
        time.sleep(0.7)
        other.post(f"{task_url(queued_task)}/cancel", headers=bearer(api_key))
        cancelled_at.append(time.monotonic())

    changer = threading.Thread(target=change_then_end)
    changer.start()
    response = client.get(
        f"{task_url(queued_task)}?wait=20&view=summary&until=ended",
        headers={"If-None-Match": '"1"'},
    )
    answered_at = time.monotonic()
    changer.join()

    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert answered_at >= cancelled_at[0] - 0.05  # not woken by the process in between
    assert answered_at - cancelled_at[0] < 2


def test_a_long_poll_until_ended_that_saw_changes_but_no_end_answers_the_change(
    client: ApiClient, app: Flask, api_key: str, queued_task: dict[str, Any]
) -> None:
    other = app.test_client()
    changer = threading.Timer(
        0.2, lambda: other.post(f"{task_url(queued_task)}/process", headers=bearer(api_key))
    )
    changer.start()
    started = time.monotonic()

    response = client.get(
        f"{task_url(queued_task)}?wait=1.5&view=summary&until=ended",
        headers={"If-None-Match": '"1"'},
    )
    changer.join()

    # At the end of the wait, not at the change; and not 304: the client's revision is out
    # of date, though the task has not ended.
    assert time.monotonic() - started >= 1.4
    assert response.status_code == 200
    assert response.get_json()["revision"] > 1
    assert response.get_json()["status"] not in ("completed", "failed", "cancelled")


def test_a_long_poll_that_sees_no_change_answers_304_after_the_wait(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    started = time.monotonic()

    response = client.get(f"{task_url(queued_task)}?wait=0.5", headers={"If-None-Match": '"1"'})

    assert response.status_code == 304
    assert 0.5 <= time.monotonic() - started < 5


def test_a_long_poll_on_an_ended_task_answers_at_once(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    ended = client.post(f"{task_url(queued_task)}/cancel").get_json()
    started = time.monotonic()

    response = client.get(f"{task_url(queued_task)}?wait=30&after={ended['revision']}")

    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "query", ["wait=61", "wait=-1", "after=-1", "view=everything", "until=forever"]
)
def test_bad_read_arguments_are_a_422_naming_the_argument(
    client: ApiClient, queued_task: dict[str, Any], query: str
) -> None:
    response = client.get(f"{task_url(queued_task)}?{query}")

    assert response.status_code == 422
    assert query.split("=")[0] in response.get_json()["errors"]["query"]


def test_cancel_answers_202_with_the_cancelled_task_and_409_after(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    response = client.post(f"{task_url(queued_task)}/cancel")

    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["history"][-1]["detail"]["reason"] == "cancelled by request"
    again = client.post(f"{task_url(queued_task)}/cancel")
    assert again.status_code == 409
    assert "only an unfinished task can be cancelled" in again.get_json()["message"]
    assert client.post(f"{task_url(queued_task)}/process").status_code == 409


def read_events(response: Any) -> Iterator[dict[str, Any] | str]:
    """Each event of an SSE response as {"id", "event", "data"}, and each comment as a str."""
    buffer = ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            if block.startswith(":"):
                yield block
                continue
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            if "data" in fields:
                yield {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }


def test_the_event_stream_sends_each_event_then_the_end_and_closes(
    client: ApiClient, app: Flask, api_key: str, queued_task: dict[str, Any]
) -> None:
    response = client.get(f"{task_url(queued_task)}/events", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    threading.Timer(
        0.5,
        lambda: app.test_client().post(f"{task_url(queued_task)}/cancel", headers=bearer(api_key)),
    ).start()

    received = list(read_events(response))

    events = [r for r in received if isinstance(r, dict)]
    assert [(e["id"], e["event"]) for e in events] == [(1, "task.status"), (2, "task.cancelled")]
    assert events[0]["data"]["status"] == "queued"
    assert events[1]["data"]["result"]["partial"] is True
    assert ": heartbeat" in received  # 0.5 s without an event, heartbeats every 0.3 s


def test_a_stream_resumed_with_last_event_id_starts_after_it(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    client.post(f"{task_url(queued_task)}/process")
    client.post(f"{task_url(queued_task)}/cancel")

    whole = client.get(f"{task_url(queued_task)}/events", buffered=False)
    resumed = client.get(
        f"{task_url(queued_task)}/events", headers={"Last-Event-ID": "1"}, buffered=False
    )

    every = [e["id"] for e in read_events(whole) if isinstance(e, dict)]
    assert every == [1, 2, 3]
    assert [e["id"] for e in read_events(resumed) if isinstance(e, dict)] == [2, 3]


def test_a_bad_last_event_id_is_a_422_naming_it(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    response = client.get(f"{task_url(queued_task)}/events", headers={"Last-Event-ID": "x"})

    assert response.status_code == 422
    assert "Last-Event-ID" in response.get_json()["errors"]["headers"]


def test_streams_past_the_bound_are_refused_with_retry_after(
    client: ApiClient, queued_task: dict[str, Any]
) -> None:
    url = f"{task_url(queued_task)}/events"
    held = [client.get(url, buffered=False) for _ in range(3)]
    try:
        refused = client.get(url)
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        for response in held:
            response.close()
    freed = client.get(url, buffered=False)
    assert freed.status_code == 200
    freed.close()


def test_another_tenants_key_finds_no_task_to_read_wait_on_stream_or_cancel(
    client: ApiClient, app: Flask, queued_task: dict[str, Any], record: Record
) -> None:
    other = bearer(new_key(app, f"{record.tenant}-other"))
    url = task_url(queued_task)

    assert client.get(url, headers={**other, "If-None-Match": '"1"'}).status_code == 404
    assert client.get(f"{url}?wait=1&after=1", headers=other).status_code == 404
    assert client.get(f"{url}?view=summary", headers=other).status_code == 404
    assert client.get(f"{url}/events", headers=other).status_code == 404
    assert client.post(f"{url}/cancel", headers=other).status_code == 404
    assert client.get(url).get_json()["status"] == "queued"


def test_a_step_event_keeps_the_tasks_status_and_names_the_steps_own(
    client: ApiClient, queued_task: dict[str, Any], engine: sa.Engine, tenant: str
) -> None:
    run_two_waves(engine, tenant, queued_task)
    client.post(f"{task_url(queued_task)}/cancel")

    events = [
        e
        for e in read_events(client.get(f"{task_url(queued_task)}/events", buffered=False))
        if isinstance(e, dict)
    ]

    finished = [e["data"] for e in events if e["event"] == "step.finished"]
    assert [(f["subtask"], f["status"], f["step_status"]) for f in finished] == [
        ("facts", "running", "completed"),
        ("copy", "running", "completed"),
    ]
    assert finished[0]["input_tokens"] == 10 and finished[0]["excerpt"] == "facts done"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event"] == "task.cancelled"
