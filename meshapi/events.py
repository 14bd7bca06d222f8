"""A task's events as Server-Sent Events, and the bound on streams one API process holds.

Each event is `id:` (its number in the task's log), `event:` (its type) and one `data:` line of
JSON. A stream starts with a `retry:` hint, sends a comment line when nothing happened for the
heartbeat interval, and ends after the task's final event. Streams hold a greenlet each under
gunicorn's gevent workers (and a thread under any other worker), so their number is bounded
per process: past the bound a client is told 503 with Retry-After, never left hanging.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from flask import Response

from meshapi.schemas.fields import shown_from_one
from meshcore.domain.errors import TooManyStreams
from meshcore.domain.task import HistoryEntry

# What a browser's EventSource waits before it reconnects, in milliseconds.
RETRY_MS = 1000


class Slot:
    """One stream's place in the process's bound; released when the stream ends."""

    def __init__(self, slots: StreamSlots) -> None:
        self._slots, self._is_held = slots, True

    def release(self) -> None:
        if self._is_held:
            self._is_held = False
            self._slots.give_back()


class StreamSlots:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def take(self, limit: int) -> Slot:
        """A slot, or TooManyStreams when `limit` streams are open in this process."""
        with self._lock:
            if self.open >= limit:
                raise TooManyStreams(f"this server holds {limit} open event streams; retry")
            self.open += 1
        return Slot(self)

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


STREAMS = StreamSlots()


def stream(events: Iterator[HistoryEntry | None], slot: Slot) -> Response:
    """The response that sends `events` as they come; None is a heartbeat."""

    def body() -> Iterator[str]:
        try:
            yield f"retry: {RETRY_MS}\n\n"
            for entry in events:
                yield ": heartbeat\n\n" if entry is None else frame(entry)
        finally:
            slot.release()

    return Response(
        body(),
        mimetype="text/event-stream",
        # A proxy that buffers would hold events back until the stream ends.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def frame(entry: HistoryEntry) -> str:
    """One event in the SSE wire format."""
    return f"id: {entry.seq}\nevent: {entry.type}\ndata: {_json(event_data(entry))}\n\n"


def event_data(entry: HistoryEntry) -> dict[str, object]:
    """An event's JSON: when, the task's status then, who, and what happened."""
    data: dict[str, object] = {
        "id": entry.seq,
        "type": entry.type,
        "at": entry.at.isoformat(),
        "status": entry.status.value,
    }
    if entry.agent is not None:
        data["agent"] = entry.agent
    if entry.queue is not None:
        data["queue"] = entry.queue
    detail = shown_from_one(entry.detail)
    # A step's own outcome is its `step_status`: `status` stays the task's.
    if "status" in detail:
        data["step_status"] = detail.pop("status")
    data.update(detail)
    return data


def json_response(body: object, *, status: int = 200, headers: dict[str, str]) -> Response:
    return Response(_json(body), status=status, mimetype="application/json", headers=headers)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
