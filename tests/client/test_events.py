"""A task's event stream: SSE parsing, and resuming a dropped stream without repeat or gap."""

from __future__ import annotations

import httpx
import pytest
from meshclient._events import SseParser

from meshclient import Event, Mesh, NotFound, ProtocolError, TransportError
from tests.client.fakes import (
    API_KEY,
    BASE_URL,
    NETWORK_ID,
    TASK_ID,
    ScriptedApi,
    error,
    event_stream,
    sse_event,
    summary,
    untrusted_certificate,
)

STATUS = sse_event(1, "task.status", {"status": "planning"})
PLAN = sse_event(2, "task.plan", {"subtasks": ["facts", "email"]})
STEP = sse_event(3, "step.finished", {"subtask": "facts", "status": "completed"})
DONE = sse_event(4, "task.completed", {"status": "completed", "score": 0.9})


def events_of(
    api: ScriptedApi, sleeps: list[float], *, last_event_id: int | None = None, retries: int = 3
) -> list[Event]:
    transport, sleep = api.transport, sleeps.append
    with Mesh(BASE_URL, API_KEY, transport=transport, sleep=sleep, retries=retries) as mesh:
        return list(mesh.events(NETWORK_ID, TASK_ID, last_event_id=last_event_id))


def feed(text: str) -> list[tuple[str, str, str]]:
    parser = SseParser()
    return [e for line in text.split("\n") if (e := parser.feed(line)) is not None]


def test_multi_line_data_is_joined_with_newlines_and_comments_are_ignored() -> None:
    text = (
        ": heartbeat\n"
        "id: 2\n"
        "event: task.plan\n"
        'data: {"subtasks":\n'
        ": another heartbeat, inside the event\n"
        'data:  ["facts", "email"]}\n'
        "\n"
    )

    assert feed(text) == [("2", "task.plan", '{"subtasks":\n ["facts", "email"]}')]


def test_fields_without_a_space_and_events_without_data_are_read_as_sse_says() -> None:
    text = "id:5\nevent:task.wave\ndata:{}\n\nid: 6\nevent: task.status\n\n"

    assert feed(text) == [("5", "task.wave", "{}")]


def test_the_stream_yields_typed_events_and_stops_after_the_final_one() -> None:
    api = ScriptedApi(event_stream(": hello\n\n" + STATUS + PLAN + STEP + DONE))

    events = events_of(api, [])

    assert events == [
        Event(1, "task.status", {"status": "planning"}),
        Event(2, "task.plan", {"subtasks": ["facts", "email"]}),
        Event(3, "step.finished", {"subtask": "facts", "status": "completed"}),
        Event(4, "task.completed", {"status": "completed", "score": 0.9}),
    ]
    assert events[-1].is_final and not events[0].is_final
    assert len(api.requests) == 1
    assert api.requests[0].url.path.endswith(f"/tasks/{TASK_ID}/events")
    assert "Last-Event-ID" not in api.requests[0].headers


def test_a_stream_dropped_after_event_k_resumes_from_k_plus_1_without_a_repeat() -> None:
    api = ScriptedApi(
        # Breaks in the middle of event 3: its half must not be taken for an event.
        event_stream(STATUS + PLAN + STEP[:20], then=httpx.ReadError("connection reset")),
        # A server that resends event 2 anyway must not make the client repeat it.
        event_stream(PLAN + STEP + DONE),
    )
    sleeps: list[float] = []

    events = events_of(api, sleeps)

    assert [e.id for e in events] == [1, 2, 3, 4]
    assert api.requests[1].headers["Last-Event-ID"] == "2"
    assert len(sleeps) == 1


def test_an_event_cut_off_by_a_closed_connection_is_dropped_whole() -> None:
    cut = 'id: 2\nevent: task.plan\ndata: {"subtasks": []}\n'  # no blank line: never dispatched
    api = ScriptedApi(event_stream(STATUS + cut), event_stream(PLAN + STEP + DONE))

    events = events_of(api, [])

    assert [e.id for e in events] == [1, 2, 3, 4]
    assert events[1].data == {"subtasks": ["facts", "email"]}
    assert api.requests[1].headers["Last-Event-ID"] == "1"


def test_a_stream_closed_before_the_final_event_reconnects_after_the_servers_retry() -> None:
    api = ScriptedApi(
        event_stream("retry: 2500\n\n" + STATUS),
        event_stream(PLAN + STEP + DONE),
    )
    sleeps: list[float] = []

    events = events_of(api, sleeps)

    assert [e.id for e in events] == [1, 2, 3, 4]
    assert api.requests[1].headers["Last-Event-ID"] == "1"
    assert sleeps == [2.5]


def test_a_stream_resumed_by_the_caller_asks_for_what_follows_its_last_event() -> None:
    api = ScriptedApi(event_stream(STEP + DONE))

    events = events_of(api, [], last_event_id=2)

    assert [e.id for e in events] == [3, 4]
    assert api.requests[0].headers["Last-Event-ID"] == "2"


def test_a_stream_resumed_after_the_final_event_ends_at_once_without_an_event() -> None:
    # The API ends a stream resumed past a task's final event with no event at all.
    api = ScriptedApi(event_stream("retry: 1000\n\n"), summary("completed", 4))
    sleeps: list[float] = []

    events = events_of(api, sleeps, last_event_id=4)

    assert events == []
    assert sleeps == []
    assert api.requests[1].url.params["view"] == "summary"


def test_a_stream_closed_with_nothing_new_reconnects_while_the_task_runs() -> None:
    api = ScriptedApi(
        event_stream("retry: 1000\n\n"), summary("running", 2), event_stream(STEP + DONE)
    )
    sleeps: list[float] = []

    events = events_of(api, sleeps, last_event_id=2)

    assert [e.id for e in events] == [3, 4]
    assert api.requests[2].headers["Last-Event-ID"] == "2"
    assert sleeps == [1.0]


def test_a_stream_to_a_server_whose_certificate_is_not_trusted_fails_at_once() -> None:
    api = ScriptedApi(untrusted_certificate())

    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        events_of(api, [])

    assert len(api.requests) == 1


def test_a_stream_refused_for_load_waits_as_told_and_tries_again() -> None:
    api = ScriptedApi(
        error(503, "too many streams", **{"Retry-After": "4"}),
        event_stream(STATUS + DONE),
    )
    sleeps: list[float] = []

    events = events_of(api, sleeps)

    assert [e.type for e in events] == ["task.status", "task.completed"]
    assert sleeps == [4.0]


def test_a_stream_of_an_unknown_task_raises_not_found() -> None:
    api = ScriptedApi(error(404, "task not found"))

    with pytest.raises(NotFound):
        events_of(api, [])


def test_a_stream_that_keeps_dropping_gives_up_with_a_transport_error() -> None:
    api = ScriptedApi(*[httpx.ConnectError("refused") for _ in range(4)])

    with pytest.raises(TransportError) as raised:
        events_of(api, [])

    assert raised.value.attempts == 4
    assert API_KEY not in str(raised.value)


def test_an_event_that_makes_progress_resets_the_count_of_drops() -> None:
    drop = httpx.ReadError("reset")
    api = ScriptedApi(
        event_stream(STATUS, then=drop),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        event_stream(PLAN, then=drop),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        event_stream(STEP + DONE),
    )

    events = events_of(api, [], retries=3)

    assert [e.id for e in events] == [1, 2, 3, 4]


def test_an_event_without_an_integer_id_is_a_protocol_error() -> None:
    api = ScriptedApi(event_stream('event: task.status\ndata: {"status": "running"}\n\n'))

    with pytest.raises(ProtocolError, match="no integer id"):
        events_of(api, [])


def test_an_answer_that_is_not_an_event_stream_is_a_protocol_error() -> None:
    api = ScriptedApi(httpx.Response(200, json={"status": "running"}))

    with pytest.raises(ProtocolError, match="event stream"):
        events_of(api, [])
