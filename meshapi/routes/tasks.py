"""/api/mesh/networks/{id}/tasks"""

from __future__ import annotations

from uuid import UUID

from flask import url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi.blueprint import Blueprint
from meshapi.context import services
from meshapi.routes.networks import page_of
from meshapi.schemas.common import ErrorSchema
from meshapi.schemas.tasks import (
    TASK_EXAMPLE,
    TaskCreateSchema,
    TaskListArgsSchema,
    TaskSchema,
    TaskSummarySchema,
)

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/mesh/networks/<id(network):network_id>/tasks",
    description="Tasks: submit, poll, read the result",
)


@blp.route("")
class Tasks(MethodView):
    @blp.arguments(TaskCreateSchema, example=TASK_EXAMPLE)
    @blp.response(
        202,
        TaskSchema,
        headers={
            "Location": {"description": "Where to poll the task", "schema": {"type": "string"}}
        },
    )
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, network_id: UUID) -> object:
        """Submit a task; poll the Location until its status is final."""
        task = services().tasks.submit(network_id, **body)
        location = url_for("tasks.TaskById", network_id=network_id, task_id=task.id)
        return task, {"Location": location}

    @blp.arguments(TaskListArgsSchema, location="query")
    @blp.response(200, TaskSummarySchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.paginate()
    def get(
        self, args: dict, network_id: UUID, pagination_parameters: PaginationParameters
    ) -> object:
        """List the network's tasks, newest first; `status` filters."""
        tasks, total = services().tasks.list(
            network_id, page_of(pagination_parameters), args.get("status")
        )
        pagination_parameters.item_count = total
        return tasks


@blp.route("/<id(task):task_id>")
class TaskById(MethodView):
    @blp.response(200, TaskSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, network_id: UUID, task_id: UUID) -> object:
        """A task with its subtasks, history, result and usage."""
        return services().tasks.get(network_id, task_id)


@blp.route("/<id(task):task_id>/process")
class TaskProcess(MethodView):
    @blp.response(202, TaskSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, network_id: UUID, task_id: UUID) -> object:
        """Start a task submitted with auto_process false."""
        return services().tasks.process(network_id, task_id)
