"""Tasks, in and out."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import Ordinal, Rounded, json_object, shown_from_one, text
from meshapi.schemas.usage import UsageSchema
from meshapi.schemas.webhooks import WebhookSchema
from meshcore.domain.agent_types import NAME_PATTERN
from meshcore.domain.plan import KEY_PATTERN, MAX_SUBTASKS
from meshcore.domain.task import MAX_DESCRIPTION, Priority, TaskStatus


class PlannedSubtaskSchema(ma.Schema):
    key = ma.fields.String(
        required=True,
        validate=validate.Regexp(
            KEY_PATTERN, error="must be lowercase letters, digits, - or _, at most 64"
        ),
    )
    agent = ma.fields.String(
        required=True,
        validate=validate.Regexp(NAME_PATTERN, error="must be an agent type's name"),
        metadata={"description": "The agent type that takes the subtask"},
    )
    description = text(2000, required=True)
    depends_on = ma.fields.List(
        ma.fields.String(validate=validate.Length(1, 64)),
        load_default=list,
        validate=validate.Length(max=MAX_SUBTASKS),
    )


class TaskCreateSchema(ma.Schema):
    description = text(MAX_DESCRIPTION, required=True)
    context = json_object(load_default=dict)
    priority = ma.fields.Enum(Priority, by_value=True, load_default=Priority.NORMAL)
    auto_process = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "false keeps the task queued until POST .../process"},
    )
    webhook = ma.fields.Nested(
        WebhookSchema,
        metadata={"description": "Where this task's events are POSTed; else its network's"},
    )
    plan = ma.fields.List(
        ma.fields.Nested(PlannedSubtaskSchema),
        validate=validate.Length(1, MAX_SUBTASKS),
        metadata={
            "description": "Optional: the subtasks to run instead of asking the coordinator",
            "example": [
                {"key": "facts", "agent": "research", "description": "Find Orbit's facts"},
                {
                    "key": "email",
                    "agent": "content",
                    "description": "Write the email from the facts",
                    "depends_on": ["facts"],
                },
            ],
        },
    )


# What the docs UI fills a submission in with; it must succeed as sent (a test posts it).
TASK_EXAMPLE = {
    "description": "Write the launch email for Orbit, our budgeting app, for trial users",
    "context": {"segment": "trial users", "tone": "friendly"},
    "priority": "normal",
}


class TaskApproveSchema(ma.Schema):
    plan = ma.fields.List(
        ma.fields.Nested(PlannedSubtaskSchema),
        validate=validate.Length(1, MAX_SUBTASKS),
        metadata={
            "description": "Optional: the plan to run in place of the one awaiting approval, "
            "checked as a submitted plan is; without it the plan is approved as it is",
            "example": [
                {"key": "facts", "agent": "research", "description": "Find Orbit's facts"},
                {
                    "key": "email",
                    "agent": "content",
                    "description": "Write the email from the facts, in under 120 words",
                    "depends_on": ["facts"],
                },
            ],
        },
    )


# An approval as it is: what the docs UI sends (and what the auth matrix posts).
APPROVE_EXAMPLE: dict[str, object] = {}
MAX_REASON = 2000


class TaskRejectSchema(ma.Schema):
    reason = text(
        MAX_REASON,
        required=True,
        metadata={"description": "Why the plan is rejected: the task's error says so"},
    )


REJECT_EXAMPLE = {"reason": "Research the pricing page first; the email comes later"}


class TaskListArgsSchema(ma.Schema):
    status = ma.fields.Enum(TaskStatus, by_value=True)


MAX_WAIT_SECONDS = 60
MAX_REVISION = 2**31 - 1


class TaskReadArgsSchema(ma.Schema):
    view = ma.fields.String(
        load_default="full",
        validate=validate.OneOf(["full", "summary"]),
        metadata={"description": "summary: status, revision, progress, answer and score only"},
    )
    wait = ma.fields.Float(
        validate=validate.Range(min=0, max=MAX_WAIT_SECONDS),
        metadata={
            "description": "Seconds to wait (up to 60) for the task to change from the revision "
            "named by If-None-Match or `after`, or to end; 304 if it did not"
        },
    )
    after = ma.fields.Integer(
        validate=validate.Range(min=0, max=MAX_REVISION),
        metadata={"description": "The revision the client has (as If-None-Match names it)"},
    )
    until = ma.fields.String(
        load_default="changed",
        validate=validate.OneOf(["changed", "ended"]),
        metadata={
            "description": "With `wait`: `changed` answers at the task's next change; `ended` "
            "only once it has ended (or, at the end of the wait, if it changed meanwhile)"
        },
    )


class TaskReadHeadersSchema(ma.Schema):
    if_none_match = ma.fields.String(
        data_key="If-None-Match",
        metadata={"description": "The task's ETag as the client has it: 304 while unchanged"},
    )


class EventsHeadersSchema(ma.Schema):
    last_event_id = ma.fields.Integer(
        data_key="Last-Event-ID",
        validate=validate.Range(min=0, max=MAX_REVISION),
        metadata={"description": "Resume after this event: the stream starts with the next"},
    )


class TaskProgressSchema(ma.Schema):
    """GET a task with ?view=summary: what a poll needs, without the history."""

    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    status = ma.fields.Enum(TaskStatus, by_value=True)
    revision = ma.fields.Integer(metadata={"description": "Moves on every change; the ETag"})
    iteration = ma.fields.Integer(metadata={"description": "Counted from 1; 0 before planning"})
    wave = Ordinal(metadata={"description": "The current wave of the iteration, from 1"})
    progress = ma.fields.Function(
        lambda s: {"done": s.steps_done, "planned": s.steps_planned},
        metadata={
            "description": "Specialist steps of the current iteration recorded, of those planned",
            "type": "object",
            "properties": {"done": {"type": "integer"}, "planned": {"type": "integer"}},
        },
    )
    answer = ma.fields.String(allow_none=True)
    score = ma.fields.Float(allow_none=True)


class StepSchema(ma.Schema):
    status = ma.fields.String()
    output = ma.fields.String()
    model = ma.fields.String(allow_none=True)
    queue = ma.fields.String()
    latency_ms = Rounded(metadata={"description": "Milliseconds, to a tenth"})
    usage = ma.fields.Nested(UsageSchema)
    memory_read = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Ids of the shared memory items the agent's prompt held"},
    )
    error = ma.fields.String(allow_none=True)
    worker = ma.fields.String(
        allow_none=True, metadata={"description": "The Celery worker that ran the step"}
    )
    recorded_at = ma.fields.DateTime()


class SubtaskSchema(ma.Schema):
    key = ma.fields.String()
    agent = ma.fields.String(attribute="planned.agent_type")
    description = ma.fields.String(attribute="planned.description")
    depends_on = ma.fields.List(ma.fields.String(), attribute="planned.depends_on")
    iteration = ma.fields.Integer(metadata={"description": "Counted from 1"})
    wave = Ordinal(
        metadata={
            "description": "Counted from 1 within its iteration: a wave runs once the waves "
            "before it are done"
        }
    )
    status = ma.fields.String(metadata={"description": "pending, completed or failed"})
    step = ma.fields.Nested(StepSchema, allow_none=True)


class HistoryDetail(ma.fields.Dict):
    """A history entry's detail, with a wave shown from 1 as the task's subtasks show it."""

    def _serialize(self, value: object, attr: str | None, obj: object, **kwargs: object) -> object:
        if isinstance(value, dict):
            value = shown_from_one(value)
        return super()._serialize(value, attr, obj, **kwargs)


class HistoryEntrySchema(ma.Schema):
    seq = ma.fields.Integer(
        metadata={"description": "The event's number in the task's log (its SSE id), from 1"}
    )
    at = ma.fields.DateTime()
    kind = ma.fields.String(metadata={"description": "transition or step"})
    status = ma.fields.String()
    agent = ma.fields.String(allow_none=True)
    queue = ma.fields.String(allow_none=True)
    detail = HistoryDetail(
        metadata={"description": "What happened; `iteration` and `wave` count from 1"}
    )


class ResultField(ma.fields.Dict):
    """A task's result, dumped as its `to_json()`: still a plain object in the OpenAPI
    document (a Dict to apispec) and on the wire."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return super()._serialize(None if value is None else value.to_json(), attr, obj, **kwargs)


class TaskSummarySchema(ma.Schema):
    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    description = ma.fields.String()
    context = ma.fields.Dict()
    priority = ma.fields.Enum(Priority, by_value=True)
    status = ma.fields.Enum(TaskStatus, by_value=True)
    iteration = ma.fields.Integer()
    revision = ma.fields.Integer(
        metadata={"description": "Moves on every change: the number of the task's last event"}
    )
    result = ResultField(allow_none=True)
    error = ma.fields.String(allow_none=True)
    usage = ma.fields.Nested(UsageSchema)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    deadline_at = ma.fields.DateTime()


class TaskSchema(TaskSummarySchema):
    subtasks = ma.fields.List(
        ma.fields.Nested(SubtaskSchema),
        metadata={
            "description": "The subtasks of every iteration, oldest first, each with its "
            "`iteration` and `wave`: a revision's subtasks follow the ones it revises"
        },
    )
    history = ma.fields.List(ma.fields.Nested(HistoryEntrySchema))
