"""meshcli/follow.py: a task's events as the CLI prints them, and what a finished task shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from meshcli.follow import clock, event_json, event_line, follow, verdict
from meshclient import Event, WaitTimeout

AT = "2026-12-07T02:03:34.590107+00:00"


def _event(event_id: int, kind: str, **data: object) -> Event:
    return Event(event_id, kind, {"id": event_id, "type": kind, "at": AT, **data})


def test_a_finished_step_shows_subtask_agent_model_latency_and_tokens() -> None:
    finished = _event(
        12,
        "step.finished",
        status="completed",
        agent="research",
        queue="agent.research",
        subtask="facts",
        model="mesh-offline/offline-v1",
        latency_ms=910.04,
        input_tokens=131,
        output_tokens=69,
        error=None,
    )

    assert event_line(finished).split() == [
        *("02:03:34.590", "step", "facts", "research", "finished"),
        *("mesh-offline/offline-v1", "910", "ms", "131", "in", "/", "69", "out", "tokens"),
    ]


def test_a_started_step_says_so_and_counts_attempts_after_the_first() -> None:
    first = _event(3, "step.started", agent="coordinator", subtask="@plan", attempt=1)
    again = _event(9, "step.started", agent="content", subtask="email", attempt=2)

    assert event_line(first).split()[1:] == ["step", "@plan", "coordinator", "started"]
    assert event_line(again).endswith("started (attempt 2)")


def test_a_failed_step_shows_its_error() -> None:
    failed = _event(
        7, "step.finished", agent="content", subtask="email", error="every model failed"
    )

    assert event_line(failed) == (
        "02:03:34.590  step   email            content         failed   every model failed"
    )


def test_status_changes_and_endings_show_the_status_and_why() -> None:
    running = _event(6, "task.status", status="running", iteration=1)
    done = _event(24, "task.completed", status="completed", reason="quality threshold met")

    assert event_line(running) == "02:03:34.590  status running"
    assert event_line(done) == "02:03:34.590  status completed (quality threshold met)"


def test_a_verdict_shows_the_score_and_the_feedback_on_one_line() -> None:
    verdict_event = _event(
        23, "critic.verdict", iteration=1, score=0.8612, feedback="Back each claim\nwith a fact."
    )

    assert event_line(verdict_event) == (
        "02:03:34.590  critic score 0.86: Back each claim with a fact."
    )


def test_a_plan_shows_each_subtask_with_its_agent_and_what_it_waits_for() -> None:
    plan = _event(
        5,
        "task.plan",
        iteration=1,
        subtasks=[
            {"key": "facts", "agent": "research", "depends_on": [], "wave": 1},
            {"key": "email", "agent": "content", "depends_on": ["facts"], "wave": 2},
        ],
    )

    assert event_line(plan) == (
        "02:03:34.590  plan   iteration 1: facts (research); email (content after facts)"
    )


def test_an_event_of_a_type_the_cli_does_not_know_still_shows_what_it_carries() -> None:
    new = _event(30, "task.webhook", status="running", url="https://x.test")

    assert event_line(new) == '02:03:34.590  task.webhook {"url": "https://x.test"}'


def test_json_lines_carry_the_id_the_type_and_the_data() -> None:
    step = _event(3, "step.started", agent="coordinator", subtask="@plan")

    assert json.loads(event_json(step)) == {
        "id": 3,
        "type": "step.started",
        "at": AT,
        "agent": "coordinator",
        "subtask": "@plan",
    }


def test_a_time_that_does_not_parse_is_shown_as_it_came() -> None:
    assert clock("2026-12-07T02:03:34+00:00") == "02:03:34.000"
    assert clock("yesterday") == "yesterday"


def test_verdict_shows_the_answer_score_feedback_and_url() -> None:
    task = {
        "status": "completed",
        "result": {"answer": "Hello", "score": 0.8234, "feedback": "Shorter subject line"},
    }

    assert verdict(task, "http://h/t/1").splitlines() == [
        "Hello",
        "",
        "score     0.82",
        "feedback  Shorter subject line",
        "task      http://h/t/1",
    ]


def test_verdict_of_a_failed_task_shows_its_error() -> None:
    task = {"status": "failed", "result": None, "error": "subtask content failed"}

    assert verdict(task, "http://h/t/1").splitlines()[0] == "subtask content failed"


class _Stream:
    """A client whose task has these events; it records where each read resumed."""

    def __init__(self, *events: Event) -> None:
        self._events = events
        self.resumed: list[int | None] = []

    def events(
        self, network_id: str, task_id: str, *, last_event_id: int | None = None
    ) -> Iterator[Event]:
        self.resumed.append(last_event_id)
        for event in self._events:
            if event.id > (last_event_id or 0):
                yield event
                if event.is_final:
                    return


def test_follow_hands_over_every_event_and_answers_the_final_one() -> None:
    events = [
        _event(1, "task.status", status="queued"),
        _event(2, "task.status", status="planning"),
        _event(3, "task.cancelled", status="cancelled"),
    ]
    seen: list[Event] = []

    final = follow(_Stream(*events), "n", "t", echo=seen.append)

    assert seen == events
    assert final == events[-1]


def test_follow_until_an_event_stops_there_without_a_final_one() -> None:
    events = [_event(i, "task.status", status="running") for i in range(1, 6)]
    stream, seen = _Stream(*events), []

    final = follow(stream, "n", "t", echo=seen.append, after=1, until=3)

    assert [e.id for e in seen] == [2, 3]
    assert final is None
    assert stream.resumed == [1]


class _Silent:
    """A client whose stream stays silent: a step that takes long. Its socket's timeouts are
    taken for a dropped connection, as httpx takes them."""

    def events(
        self, network_id: str, task_id: str, *, last_event_id: int | None = None
    ) -> Iterator[Event]:
        try:
            time.sleep(5)
        except TimeoutError as exc:
            raise ConnectionError("the read timed out: reconnect") from exc
        yield _event(1, "task.status", status="queued")


def test_follow_stops_with_wait_timeout_when_a_silent_stream_outlasts_the_timeout() -> None:
    started = time.monotonic()

    with pytest.raises(WaitTimeout, match=r"task t still queued after 0\.05 s"):
        follow(_Silent(), "n", "t", echo=print, timeout=0.05)

    assert time.monotonic() - started < 2
