"""/healthz and /readyz, at the root, for load balancers and Kubernetes probes."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import abort

from meshapi.blueprint import Blueprint
from meshapi.context import mesh
from meshapi.schemas.errors import ErrorSchema

blp = Blueprint("health", __name__, description="Liveness and readiness")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok"})


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ready"})
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Boolean(),
        metadata={"description": "Each dependency and whether it answers"},
    )


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ErrorSchema, description="A dependency does not answer")
    def get(self) -> object:
        """The database and Redis are reachable."""
        checks = mesh().readiness()
        if all(checks.values()):
            return {"status": "ready", "checks": checks}
        down = ", ".join(name for name, ok in checks.items() if not ok)
        abort(503, message=f"not ready: {down} unreachable", errors={"checks": checks})
