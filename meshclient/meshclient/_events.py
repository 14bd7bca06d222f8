"""A task's event stream: Server-Sent Events parsed line by line, and where to resume a drop.

Both clients feed lines from the connection to an `EventStream` and sleep for as long as it
says between connections, so the parsing and the reconnection rules are written once here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from meshclient._errors import ProtocolError, RetryableError
from meshclient._models import FINAL_STATUSES, TaskSummary
from meshclient._retry import RETRY_STATUSES
from meshclient._transport import Connection, is_transient

FINAL_EVENTS: frozenset[str] = frozenset(
    {"task.completed", "task.failed", "task.cancelled", "task.timed_out"}
)
# The API sends a comment every 15 s: a connection silent for three of them is dead.
HEARTBEAT_SECONDS = 15.0
SILENCE_SECONDS = 3 * HEARTBEAT_SECONDS


@dataclass(frozen=True)
class Event:
    """One event of a task: its id counts 1, 2, 3... per task, with no gaps."""

    id: int
    type: str
    data: dict[str, object]

    @property
    def is_final(self) -> bool:
        """Whether the task has ended with this event (the stream closes after it)."""
        return self.type in FINAL_EVENTS


@dataclass
class SseParser:
    """The text/event-stream format as the WHATWG HTML standard reads it, one line at a time."""

    last_id: str = ""
    retry_ms: int | None = None
    _type: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str, str] | None:
        """Take one line (without its end); a blank line dispatches `(id, type, data)`."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the API's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> tuple[str, str, str] | None:
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return self.last_id, kind or "message", "\n".join(data)


@dataclass
class EventStream:
    """One task's events across connections: what to ask for and how long to wait between."""

    connection: Connection
    path: str
    last_id: int | None = None
    failures: int = 0
    # Whether the current connection has given an event the caller had not seen.
    has_news: bool = False
    _parser: SseParser = field(default_factory=SseParser)

    def headers(self) -> dict[str, str]:
        """The headers of the next connection: Last-Event-ID resumes after the last event."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def timeout(self) -> httpx.Timeout:
        """A connection's timeouts: only a silence longer than three heartbeats is a drop."""
        seconds = self.connection.timeout
        return httpx.Timeout(seconds, read=max(seconds, SILENCE_SECONDS))

    def connected(self, content_type: str) -> None:
        """Start reading a new connection: a partial event of the last one is dropped."""
        if not content_type.startswith("text/event-stream"):
            raise ProtocolError(f"the event stream answered {content_type or 'no content type'}")
        self._parser = SseParser(last_id=self._parser.last_id, retry_ms=self._parser.retry_ms)
        self.has_news = False

    def feed(self, line: str) -> Event | None:
        """The event a line completes, unless it was already yielded."""
        raw = self._parser.feed(line)
        if raw is None:
            return None
        event = _event(*raw)
        # A server that resent what Last-Event-ID asked it to skip must not repeat an event.
        if self.last_id is not None and event.id <= self.last_id:
            return None
        self.last_id, self.failures, self.has_news = event.id, 0, True
        return event

    def is_caught_up(self, summary: TaskSummary) -> bool:
        """Whether the caller has every event of this task, read after a connection closed
        with nothing new: the API ends at once a stream resumed after the final event."""
        return summary["status"] in FINAL_STATUSES and summary["revision"] <= (self.last_id or 0)

    def refused(self, response: httpx.Response) -> float:
        """Seconds to wait after the API refused the stream (read in full); else its error."""
        error = self.connection.error("GET", self.path, response, attempts=self.failures + 1)
        delay = None
        if isinstance(error, RetryableError) and response.status_code in RETRY_STATUSES:
            delay = self._next_delay(error.retry_after)
        if delay is None:
            raise error
        return delay

    def dropped(self, reason: Exception) -> float:
        """Seconds to wait after the connection broke before the final event; else the error."""
        delay = self._next_delay(None)
        if delay is None or not is_transient(reason):
            raise self.connection.unreachable(
                "GET", self.path, reason, attempts=self.failures
            ) from reason
        return delay

    def _next_delay(self, retry_after: float | None) -> float | None:
        self.failures += 1
        retry = self.connection.retry
        if self.failures > retry.retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= retry.max_retry_after else None
        if self._parser.retry_ms is not None:
            # The server's `retry:` is the first wait; repeated drops back off from it.
            first = self._parser.retry_ms / 1000
            return min(max(first, retry.max_backoff), first * 2 ** (self.failures - 1))
        return retry.backoff(self.failures)


def _event(event_id: str, kind: str, data: str) -> Event:
    if not event_id.isdigit():
        raise ProtocolError(f"event {kind!r} has no integer id ({event_id!r})")
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(f"event {event_id} ({kind}) carries data that is not JSON") from exc
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"event {event_id} ({kind}) carries data that is not a JSON object")
    return Event(int(event_id), kind, dict(payload))
