"""The Flask app factory."""

from __future__ import annotations

from importlib.resources import files

import structlog
from celery import Celery
from flask import Flask, redirect, send_from_directory

from meshapi import audit, auth, console, errors, limits, telemetry
from meshapi.ids import IdConverter, id_schema
from meshapi.openapi_auth import AuthPlugin
from meshapi.rendered import RENDERED, RenderedTasks
from meshapi.routes import (
    agent_types,
    agents,
    health,
    keys,
    memory,
    networks,
    providers,
    ratings,
    tasks,
    tenant,
)
from meshapi.routes import audit as audit_trail
from meshapi.schemas.tasks import TaskProgressSchema
from meshapi.shedding import LoadShedder
from meshcore import bootstrap
from meshcore.logs import configure_logging
from meshcore.settings import Settings
from meshcore.telemetry import metrics

log = structlog.get_logger(__name__)

DOCS = "/api/mesh/docs"
DOCS_ASSETS = f"{DOCS}/assets/"
MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, celery_app: Celery | None = None) -> Flask:
    """Build the API; `settings` default to the environment's."""
    from meshworkers.app import create_celery  # the queues and routing the workers consume

    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Mesh",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/mesh",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_SPEC_OPTIONS={"info": {"description": "An AI mesh network as a service."}},
    )
    app.url_map.converters["id"] = IdConverter
    api = errors.MeshApi(app, spec_kwargs={"extra_plugins": [AuthPlugin()]})
    api.register_converter(IdConverter, id_schema)
    for module in (
        networks, agents, agent_types, tasks, ratings, memory, providers, keys, audit_trail,
        tenant, health,
    ):  # fmt: skip
        api.register_blueprint(module.blp)
    # Named in the task GET's documented answers (one of two views), so declared here.
    api.spec.components.schema("TaskProgress", schema=TaskProgressSchema)
    errors.register(app)
    auth.install(app)
    limits.install(app, settings)  # after auth: it counts by the caller's key
    audit.install(app)  # every write and refusal, once its response is decided
    assets = files("flask_swagger_ui") / "dist"
    app.add_url_rule(
        f"{DOCS_ASSETS}<path:name>",
        "docs_assets",
        lambda name: send_from_directory(str(assets), name),
    )
    # A near miss of the docs answered 404 and left a newcomer guessing.
    app.add_url_rule(f"{DOCS}/", "docs_slash", lambda: redirect(DOCS, 302))
    console.install(app)  # /console, and `/` redirects there
    telemetry.install(app)  # first: the services' engine is traced when it is made
    app.extensions["mesh"] = bootstrap.build(settings, celery_app or create_celery(settings))
    app.extensions["mesh"].keys  # noqa: B018 - at start: refuse to run without the key secret
    app.extensions[RENDERED] = RenderedTasks()
    # Last, so that it wraps everything: a refusal must cost less than what it refuses.
    app.wsgi_app = LoadShedder(  # type: ignore[method-assign]
        app.wsgi_app, settings.max_requests_in_flight, metrics.http_requests_shed.inc
    )
    return app
