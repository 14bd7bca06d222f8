"""Tasks, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.common import Ordinal, Rounded, UsageSchema, json_object, text
from meshcore.domain.network import AgentType
from meshcore.domain.plan import KEY_PATTERN, MAX_SUBTASKS
from meshcore.domain.task import MAX_DESCRIPTION, Priority, TaskStatus


class PlannedSubtaskSchema(ma.Schema):
    key = ma.fields.String(
        required=True,
        validate=validate.Regexp(
            KEY_PATTERN, error="must be lowercase letters, digits, - or _, at most 64"
        ),
    )
    agent = ma.fields.Enum(AgentType, by_value=True, required=True)
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


class TaskListArgsSchema(ma.Schema):
    status = ma.fields.Enum(TaskStatus, by_value=True)


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
        if isinstance(value, dict) and isinstance(value.get("wave"), int):
            value = {**value, "wave": value["wave"] + 1}
        return super()._serialize(value, attr, obj, **kwargs)


class HistoryEntrySchema(ma.Schema):
    at = ma.fields.DateTime()
    kind = ma.fields.String(metadata={"description": "transition or step"})
    status = ma.fields.String()
    agent = ma.fields.String(allow_none=True)
    queue = ma.fields.String(allow_none=True)
    detail = HistoryDetail(
        metadata={"description": "What happened; `iteration` and `wave` count from 1"}
    )


class TaskSummarySchema(ma.Schema):
    id = ma.fields.UUID()
    network_id = ma.fields.UUID()
    description = ma.fields.String()
    context = ma.fields.Dict()
    priority = ma.fields.Enum(Priority, by_value=True)
    status = ma.fields.Enum(TaskStatus, by_value=True)
    iteration = ma.fields.Integer()
    result = ma.fields.Dict(allow_none=True)
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
