"""/api/mesh/providers: the fleet's circuit breakers, one per model, as every worker sees them."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from meshapi.blueprint import Blueprint
from meshapi.context import mesh
from meshcore.adapters.providers import Providers

blp = Blueprint(
    "providers",
    __name__,
    url_prefix="/api/mesh/providers",
    description="Model providers and their circuit breakers",
)


class ProviderSchema(ma.Schema):
    model = ma.fields.String(metadata={"description": "litellm model name, provider/model"})
    has_credentials = ma.fields.Boolean(metadata={"description": "false: the chain skips it"})
    state = ma.fields.String(metadata={"description": "closed, open or half_open"})
    failures_in_window = ma.fields.Integer()
    total_failures = ma.fields.Integer()
    times_opened = ma.fields.Integer()
    probes = ma.fields.Integer(metadata={"description": "Half-open probes granted so far"})
    next_probe_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When an open breaker lets one caller probe the provider again"},
    )
    last_error = ma.fields.String(allow_none=True)


@blp.route("")
class ProviderList(MethodView):
    @blp.response(200, ProviderSchema(many=True))
    def get(self) -> list[dict[str, object]]:
        """Each model of the default chain, and any other a worker has called, with its breaker."""
        m = mesh()
        providers = Providers(m.settings)
        models = providers.chain(None)
        models += [name for name in m.breakers.known() if name not in models]
        rows = []
        for model in models:
            status = m.breakers.breaker(model).status()
            rows.append(
                {
                    "model": model,
                    "has_credentials": providers.has_credentials(model),
                    **status.__dict__,
                }
            )
        return rows
