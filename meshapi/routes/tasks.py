"""/api/mesh/networks/{id}/tasks"""

from __future__ import annotations

from uuid import UUID

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from meshapi import events as sse
from meshapi.auth import principal
from meshapi.blueprint import Blueprint
from meshapi.context import mesh, services
from meshapi.idempotency import IdempotencyHeaderSchema, idempotency_of
from meshapi.rendered import RENDERED, RenderedTasks
from meshapi.routes.networks import page_of
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.tasks import (
    APPROVE_EXAMPLE,
    REJECT_EXAMPLE,
    TASK_EXAMPLE,
    EventsHeadersSchema,
    TaskApproveSchema,
    TaskCreateSchema,
    TaskListArgsSchema,
    TaskReadArgsSchema,
    TaskReadHeadersSchema,
    TaskRejectSchema,
    TaskSchema,
    TaskSummarySchema,
)
from meshapi.task_json import dumps, progress_body, task_body
from meshcore.services.tasks import Unchanged

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/mesh/networks/<id(network):network_id>/tasks",
    description="Tasks: submit, poll, read the result",
)


ETAG = {
    "ETag": {
        "description": "The task's revision, a strong validator: send it back as "
        "If-None-Match to learn whether the task changed",
        "schema": {"type": "string"},
    }
}


# Admission control (meshcore/services/admission.py): the fleet's backlog is past its bound.
OVERLOADED = "Overloaded: no new work is taken now; retry after Retry-After"


@blp.route("")
class Tasks(MethodView):
    @blp.arguments(TaskCreateSchema(), example=TASK_EXAMPLE)
    @blp.arguments(IdempotencyHeaderSchema(), location="headers")
    @blp.response(
        202,
        TaskSchema,
        headers={
            "Location": {"description": "Where to poll the task", "schema": {"type": "string"}},
            **ETAG,
        },
    )
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    @blp.alt_response(
        429, schema=ErrorSchema, description="The tenant's tasks in flight are at their quota; "
        "retry after Retry-After",
    )
    @blp.alt_response(503, schema=ErrorSchema, description=OVERLOADED)
    def post(self, body: dict, headers: dict, network_id: UUID) -> object:
        """Submit a task; poll the Location until its status is final (or wait on it)."""
        task = services().tasks.submit(network_id, **body, idempotency=idempotency_of(headers))
        location = url_for("tasks.TaskById", network_id=network_id, task_id=task.id)
        return task, {"Location": location, **_validators(task.revision)}

    @blp.arguments(TaskListArgsSchema(), location="query")
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


EITHER_VIEW = {
    "oneOf": [
        {"$ref": "#/components/schemas/Task"},
        {"$ref": "#/components/schemas/TaskProgress"},
    ]
}


@blp.route("/<id(task):task_id>")
class TaskById(MethodView):
    @blp.arguments(TaskReadArgsSchema(), location="query")
    @blp.arguments(TaskReadHeadersSchema(), location="headers")
    # Either view; the body is serialised here, as the view asks.
    @blp.response(200, EITHER_VIEW, headers=ETAG)
    @blp.alt_response(304, description="Unchanged since the revision named", headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, args: dict, headers: dict, network_id: UUID, task_id: UUID) -> object:
        """A task with its subtasks, history, result and usage (or, with view=summary, its
        progress); a conditional GET of an unchanged task is a 304, and `wait` long-polls."""
        is_summary, known = args["view"] == "summary", _known_revision(args)
        is_plain = known is None and not args.get("wait")
        kept_as = (principal().tenant_id, network_id, task_id, args["view"])
        if is_plain and (kept := _rendered().get(kept_as)) is not None:
            # An ended task's answer, as it was sent before, if it is still at that revision.
            revision, body = kept
            if services().tasks.revision(network_id, task_id).revision == revision:
                return _json(body, revision)
        found = services().tasks.read(
            network_id,
            task_id,
            known=known,
            wait=args.get("wait", 0.0),
            until_ended=args["until"] == "ended",
            summary=is_summary,
        )
        if isinstance(found, Unchanged):
            return Response(status=304, headers=_validators(found.revision))
        # Built by hand, not dumped: this is the hot read (see meshapi.task_json).
        body = dumps(progress_body(found) if is_summary else task_body(found))
        if is_plain and found.status.is_terminal:
            _rendered().put(kept_as, found.revision, body)
        return _json(body, found.revision)


@blp.route("/<id(task):task_id>/cancel")
class TaskCancel(MethodView):
    @blp.response(202, TaskSchema, headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def post(self, network_id: UUID, task_id: UUID) -> object:
        """Cancel an unfinished task: it ends `cancelled` at once, keeping what was done;
        no model call starts after this answers. 409 if the task has ended."""
        task = services().tasks.cancel(network_id, task_id)
        return task, _validators(task.revision)


@blp.route("/<id(task):task_id>/approve")
class TaskApprove(MethodView):
    @blp.arguments(TaskApproveSchema(), example=APPROVE_EXAMPLE)
    @blp.response(202, TaskSchema, headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    @blp.alt_response(503, schema=ErrorSchema, description=OVERLOADED)
    def post(self, body: dict, network_id: UUID, task_id: UUID) -> object:
        """Approve the plan a task awaits approval of (`{}`), or run `plan` in its place,
        checked as a submitted plan is (422 naming the field, changing nothing): the task
        runs its first wave. 409 unless the task is awaiting_approval; 503 while the fleet
        is overloaded, the task still waiting."""
        task = services().tasks.approve(network_id, task_id, body.get("plan"))
        return task, _validators(task.revision)


@blp.route("/<id(task):task_id>/reject")
class TaskReject(MethodView):
    @blp.arguments(TaskRejectSchema(), example=REJECT_EXAMPLE)
    @blp.response(202, TaskSchema, headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, network_id: UUID, task_id: UUID) -> object:
        """Reject the plan a task awaits approval of: the task ends `cancelled`, its error
        saying the plan was rejected and why. 409 unless the task is awaiting_approval."""
        task = services().tasks.reject(network_id, task_id, body["reason"])
        return task, _validators(task.revision)


@blp.route("/<id(task):task_id>/events")
class TaskEvents(MethodView):
    @blp.arguments(EventsHeadersSchema(), location="headers")
    @blp.response(
        200,
        {"type": "string"},
        description="Server-Sent Events: `id` (1, 2, 3... per task), `event` (the type) and "
        "JSON `data`; a comment every 15 s; closed after the final event",
        content_type="text/event-stream",
    )
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(503, schema=ErrorSchema, description="Too many open streams; retry")
    def get(self, headers: dict, network_id: UUID, task_id: UUID) -> object:
        """The task's events as they happen; `Last-Event-ID` resumes after that event."""
        slot = sse.STREAMS.take(mesh().settings.max_streams)
        try:
            events = services().tasks.events(
                network_id,
                task_id,
                after=headers.get("last_event_id", 0),
                heartbeat=mesh().settings.stream_heartbeat_seconds,
            )
        except BaseException:
            slot.release()
            raise
        return sse.stream(events, slot)


def _rendered() -> RenderedTasks:
    return current_app.extensions[RENDERED]


def _json(body: bytes, revision: int) -> Response:
    return Response(body, mimetype="application/json", headers=_validators(revision))


def _known_revision(args: dict) -> int | None:
    """The revision the client has: `after`, else a strong If-None-Match of ours."""
    if "after" in args:
        return args["after"]
    for tag in request.if_none_match.as_set(include_weak=True):
        # Werkzeug gives None for a tag it could not parse; only our own tags name revisions.
        if isinstance(tag, str) and tag.isdigit() and len(tag) < 10:
            return int(tag)
    return None


def _validators(revision: int) -> dict[str, str]:
    # no-cache: a cache in between may keep the body, but must ask before reusing it.
    return {"ETag": f'"{revision}"', "Cache-Control": "no-cache"}


@blp.route("/<id(task):task_id>/process")
class TaskProcess(MethodView):
    @blp.response(202, TaskSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(503, schema=ErrorSchema, description=OVERLOADED)
    def post(self, network_id: UUID, task_id: UUID) -> object:
        """Start a task submitted with auto_process false."""
        return services().tasks.process(network_id, task_id)
