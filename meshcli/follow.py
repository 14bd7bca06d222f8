"""Following a task from the command line: its events as one line each, as they happen, and
what it came to once it ended."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from meshcli.tables import cut

if TYPE_CHECKING:
    from meshclient import Event, Mesh, Task

FEEDBACK_CHARS = 160


def follow(
    mesh: Mesh,
    network_id: str,
    task_id: str,
    *,
    echo: Callable[[Event], None],
    timeout: float | None = None,
    after: int | None = None,
    until: int | None = None,
) -> Event | None:
    """Hand each event of the task after `after` to `echo`, up to its final event, which it
    answers. With `until` (an event id), stop after that event instead and answer None.
    WaitTimeout once `timeout` seconds have passed: the task goes on without us."""
    from meshclient import WaitTimeout

    status = "queued"
    try:
        with alarm(timeout):
            for event in mesh.events(network_id, task_id, last_event_id=after):
                if event.type.startswith("task."):  # a step's event holds its own status
                    status = str(event.data.get("status", status))
                echo(event)
                if event.is_final:
                    return event
                if until is not None and event.id >= until:
                    break
    except Overdue as exc:
        raise WaitTimeout(task_id, status, timeout or 0) from exc
    return None


class Overdue(Exception):
    """The time given to a block ran out.

    Not a TimeoutError: raised inside a socket read, httpx would take a TimeoutError for the
    read timing out, and the client would reconnect instead of stopping.
    """


@contextmanager
def alarm(seconds: float | None) -> Iterator[None]:
    """Raise Overdue inside the block once `seconds` have passed.

    A stream read blocks until the next event, however long a step takes, so the time is
    kept by a signal, not checked between events. Where there is no SIGALRM (Windows), or
    off the main thread, the block runs unbounded.
    """
    if (
        seconds is None
        or not hasattr(signal, "SIGALRM")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def ring(signum: int, frame: object) -> None:
        raise Overdue(f"{seconds:g} s have passed")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def event_line(event: Event) -> str:
    """One event as one line: when, what happened, and the figures that matter."""
    return f"{clock(event.data.get('at'))}  {_what(event.type, event.data)}"


def event_json(event: Event) -> str:
    """One event as one JSON object on one line."""
    return json.dumps({"id": event.id, "type": event.type, **event.data})


def clock(at: object) -> str:
    """The time of day of an ISO 8601 timestamp, to the millisecond."""
    try:
        return datetime.fromisoformat(str(at)).strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return str(at)


def verdict(task: Task, task_url: str) -> str:
    """What a finished task came to: the answer (or error), the critic's score and feedback,
    and where to read the whole record."""
    result = task.get("result") or {}
    answer = result.get("answer") or task.get("error") or f"(no answer: {task['status']})"
    lines = [str(answer), ""]
    if isinstance(result.get("score"), int | float):
        lines.append(f"score     {result['score']:.2f}")
    if result.get("feedback"):
        lines.append(f"feedback  {result['feedback']}")
    lines.append(f"task      {task_url}")
    return "\n".join(lines)


def _what(kind: str, data: dict[str, object]) -> str:
    if kind == "task.status" or kind.removeprefix("task.") in _ENDINGS:
        reason = data.get("reason")
        return f"status {data.get('status')}" + (f" ({reason})" if reason else "")
    if kind == "task.plan":
        return f"plan   iteration {data.get('iteration')}: {_plan(data.get('subtasks'))}"
    if kind == "task.wave":
        return f"wave   {data.get('wave')} of iteration {data.get('iteration')}"
    if kind == "step.started":
        attempt = data.get("attempt")
        again = f" (attempt {attempt})" if isinstance(attempt, int) and attempt > 1 else ""
        return f"{_step(data)} started{again}"
    if kind == "step.finished":
        return _finished(data)
    if kind == "critic.verdict":
        feedback = cut(data.get("feedback"), FEEDBACK_CHARS)
        return f"critic score {_score(data.get('score'))}: {feedback}"
    if kind == "task.recovery":
        return f"note   recovered: {data.get('action')} (iteration {data.get('iteration')})"
    if kind == "task.released":
        return "note   released for processing"
    rest = {k: v for k, v in data.items() if k not in ("id", "type", "at", "status")}
    return f"{kind} {json.dumps(rest)}"


_ENDINGS = {"completed", "failed", "cancelled", "timed_out"}


def _step(data: dict[str, object]) -> str:
    return f"step   {data.get('subtask')!s:<16} {data.get('agent')!s:<15}"


def _finished(data: dict[str, object]) -> str:
    # A failed step names its error; `status` in a step's event is not relied on, as the
    # task's status and the step's share the name.
    if data.get("error"):
        return f"{_step(data)} failed   {cut(data.get('error'), FEEDBACK_CHARS)}"
    latency, tokens_in, tokens_out = (
        data.get("latency_ms"),
        data.get("input_tokens"),
        data.get("output_tokens"),
    )
    figures = [str(data.get("model") or "-")]
    if isinstance(latency, int | float):
        figures.append(f"{latency:.0f} ms")
    if isinstance(tokens_in, int) and isinstance(tokens_out, int):
        figures.append(f"{tokens_in} in / {tokens_out} out tokens")
    return f"{_step(data)} finished " + "  ".join(figures)


def _plan(subtasks: object) -> str:
    if not isinstance(subtasks, list):
        return "-"
    parts = []
    for s in subtasks:
        if not isinstance(s, dict):
            continue
        after = s.get("depends_on") or []
        needs = f" after {', '.join(map(str, after))}" if after else ""
        parts.append(f"{s.get('key')} ({s.get('agent')}{needs})")
    return "; ".join(parts) or "-"


def _score(score: object) -> str:
    return f"{score:.2f}" if isinstance(score, int | float) else str(score)
