"""Errors Mesh raises on purpose, in domain terms; `meshapi.errors` maps them to HTTP.

MeshError
  ├ Unauthenticated       no API key, a malformed one, or one that is unknown or revoked
  ├ Forbidden             a valid key without the scope the request needs
  ├ NotFound              a network, agent, task, memory item or key id that does not exist
  ├ Conflict              the current state forbids the action
  │  ├ InvalidTransition  a task status change the state machine does not allow
  │  └ TaskEnded          a change to a task that has ended (cancelled under a running step)
  ├ InvalidPlan           a cycle, a self-dependency, an unknown key or an agent the network lacks
  ├ InvalidInput          a value the domain rejects (out of range, empty, too long)
  ├ IdempotencyKeyReused  an Idempotency-Key sent again with another request
  ├ QuotaExceeded         the tenant holds all its quota allows (networks, agents, memory)
  │  └ TooManyTasksInFlight  at the tenant's limit of tasks queued or running; retry later
  ├ ModelUnavailable      no model in the chain could answer
  │  └ CallAbandoned      the task ended (cancelled) before the model was called
  └ Unavailable           a server Mesh depends on does not answer; try again later
     ├ RecordUnavailable  Postgres (or the SQLite file)
     ├ MemoryViewUnavailable  the Redis view of shared memory
     ├ TooManyStreams     this API process holds as many open event streams as it may
     └ Overloaded         the fleet's backlog is past its bound: a new task is refused for now
"""

from __future__ import annotations


class MeshError(Exception):
    """Base of every error Mesh raises on purpose."""


class Unauthenticated(MeshError):
    """The request carries no valid API key; the message says what is wrong with it."""


class Forbidden(MeshError):
    """The key is valid but lacks the scope the request needs."""


class NotFound(MeshError):
    def __init__(self, kind: str, id: object) -> None:
        super().__init__(f"{kind} {id} not found")
        self.kind, self.id = kind, id


class Conflict(MeshError):
    """The resource exists but its state forbids the action."""


class InvalidTransition(Conflict):
    def __init__(self, current: object, target: object) -> None:
        super().__init__(f"a task cannot go from {current} to {target}")
        self.current, self.target = current, target


class TaskEnded(Conflict):
    """The task ended (completed, failed, cancelled, timed out) before this change was made:
    nothing is added to it after its last event."""

    def __init__(self, task_id: object, status: object) -> None:
        super().__init__(f"task {task_id} is {status}: it takes no more changes")
        self.task_id, self.status = task_id, status


class InvalidPlan(MeshError):
    """A plan the network cannot run; `field` names the offending part."""

    def __init__(self, message: str, field: str = "plan") -> None:
        super().__init__(message)
        self.field = field


class InvalidInput(MeshError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class IdempotencyKeyReused(MeshError):
    """The Idempotency-Key was used for another request (another body or path) within its
    lifetime; `header` names it."""

    header = "Idempotency-Key"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used for a different request; a retry must send the"
            " same method, path and body, and a new request needs a new key"
        )


class QuotaExceeded(MeshError):
    """A create that would take the tenant past a quota; `quota` names it, `limit` is its size."""

    def __init__(self, quota: str, limit: int, message: str) -> None:
        super().__init__(message)
        self.quota, self.limit = quota, limit


class TooManyTasksInFlight(QuotaExceeded):
    """As many tasks queued or running as the tenant may have; one that finishes frees a slot."""

    retry_after_seconds = 10


class ModelUnavailable(MeshError):
    """Every model in the chain failed or was skipped."""


class CallAbandoned(ModelUnavailable):
    """The step's task ended before its model call went out: the call was not made."""


class Unavailable(MeshError):
    """A dependency is down; the request changed nothing and may be retried."""

    retry_after_seconds = 5


class RecordUnavailable(Unavailable):
    """The record (Postgres) cannot be reached: nothing can be read or accepted."""


class MemoryViewUnavailable(Unavailable):
    """Redis, which holds the shared view of memory, cannot be reached."""


class TooManyStreams(Unavailable):
    """Every event-stream slot of this API process is taken; another process, or a later
    try, may have one."""

    retry_after_seconds = 2


class Overloaded(Unavailable):
    """More work waits in the queues than the fleet's bound (MESH_MAX_BACKLOG): a new task
    would only wait behind it, so it is refused before anything is stored; the client retries
    after `retry_after_seconds`, by when the backlog should have drained below the bound."""

    def __init__(self, *, backlog: int, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"Mesh is overloaded: {backlog} messages wait in its queues, more than its bound of"
            f" {limit}; no new work is taken now and nothing was changed: retry after"
            f" {retry_after_seconds} s"
        )
        self.backlog, self.limit = backlog, limit
        self.retry_after_seconds = retry_after_seconds
