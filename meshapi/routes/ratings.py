"""/api/mesh/networks/{id}/tasks/{tid}/rating"""

from __future__ import annotations

from uuid import UUID

from flask.views import MethodView

from meshapi.blueprint import Blueprint
from meshapi.context import services
from meshapi.schemas.errors import ErrorSchema
from meshapi.schemas.ratings import RATING_EXAMPLE, RatingCreateSchema, RatingSchema

blp = Blueprint(
    "ratings",
    __name__,
    url_prefix="/api/mesh/networks/<id(network):network_id>/tasks/<id(task):task_id>/rating",
    description="Ratings: a client's verdict on a finished task, which shared memory learns from",
)


@blp.route("")
class TaskRating(MethodView):
    @blp.arguments(RatingCreateSchema(), example=RATING_EXAMPLE)
    @blp.response(201, RatingSchema, description="The task's first rating")
    @blp.alt_response(200, schema=RatingSchema, description="The task's rating, changed")
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    @blp.alt_response(422, schema=ErrorSchema)
    def post(self, body: dict, network_id: UUID, task_id: UUID) -> object:
        """Rate a finished task from 1 to 5, or change its rating: a feedback item goes to
        the network's memory, and the memory items the task's steps read gain confidence
        (4, 5) or lose it (1, 2). Rating again moves them only by the difference; the same
        rating again changes nothing. 409 unless the task has ended."""
        rating, is_first = services().ratings.rate(
            network_id, task_id, body["score"], body["comment"]
        )
        return rating, 201 if is_first else 200

    @blp.response(200, RatingSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    def get(self, network_id: UUID, task_id: UUID) -> object:
        """The task's rating; 404 if it has none."""
        return services().ratings.get(network_id, task_id)
