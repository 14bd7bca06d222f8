"""/healthz and /readyz, at the root, for load balancers and Kubernetes probes."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from meshapi.context import mesh

blp = Blueprint("health", __name__, description="Liveness and readiness")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200)
    @blp.alt_response(503)
    def get(self) -> tuple[dict[str, object], int]:
        """The database and Redis are reachable."""
        checks = mesh().readiness()
        ready = all(checks.values())
        return {"status": "ready" if ready else "unavailable", "checks": checks}, (
            200 if ready else 503
        )
