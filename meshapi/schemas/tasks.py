"""Tasks, in and out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.common import UsageSchema, json_object, text
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
        metadata={"description": "Optional: the subtasks to run instead of asking the coordinator"},
    )


class TaskListArgsSchema(ma.Schema):
    status = ma.fields.Enum(TaskStatus, by_value=True)


class StepSchema(ma.Schema):
    status = ma.fields.String()
    output = ma.fields.String()
    model = ma.fields.String(allow_none=True)
    queue = ma.fields.String()
    latency_ms = ma.fields.Float()
    usage = ma.fields.Nested(UsageSchema)
    memory_read = ma.fields.List(ma.fields.String())
    error = ma.fields.String(allow_none=True)
    worker = ma.fields.String(allow_none=True)
    recorded_at = ma.fields.DateTime()


class SubtaskSchema(ma.Schema):
    key = ma.fields.String()
    agent = ma.fields.String(attribute="planned.agent_type")
    description = ma.fields.String(attribute="planned.description")
    depends_on = ma.fields.List(ma.fields.String(), attribute="planned.depends_on")
    iteration = ma.fields.Integer()
    wave = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "pending, completed or failed"})
    step = ma.fields.Nested(StepSchema, allow_none=True)


class HistoryEntrySchema(ma.Schema):
    at = ma.fields.DateTime()
    kind = ma.fields.String(metadata={"description": "transition or step"})
    status = ma.fields.String()
    agent = ma.fields.String(allow_none=True)
    queue = ma.fields.String(allow_none=True)
    detail = ma.fields.Dict()


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
        metadata={"description": "The subtasks of the current iteration"},
    )
    history = ma.fields.List(ma.fields.Nested(HistoryEntrySchema))
