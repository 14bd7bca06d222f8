"""Tasks run in the test's own process: the module's API on the offline model, its dispatcher a
fake that delivers the messages here when a test drains it (`run`).

A module takes these fixtures in place of its conftest's `settings` and `app` by importing
them, each under its own name as an alias (`app as app`): ruff then counts the import as
meant, not as a name the module's tests redefine when they take the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from meshcore.bootstrap import Services
from meshcore.settings import OFFLINE_MODEL, Settings
from tests.fakes import FakeDispatcher


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"model_chain": (OFFLINE_MODEL,), "allow_offline_model": True}
    )


@pytest.fixture(scope="module")
def app(app: Flask) -> Flask:
    app.extensions["mesh"].substitute(dispatcher=FakeDispatcher())
    return app


@pytest.fixture
def services(app: Flask, tenant: str) -> Iterator[Services]:
    """The services the routes use; messages left by another test are dropped."""
    mesh = app.extensions["mesh"]
    mesh.dispatcher.pending.clear()
    yield mesh.tenant(tenant)
    mesh.dispatcher.pending.clear()


def run(app: Flask, services: Services) -> None:
    """Deliver every message sent, as the workers would: the tasks submitted run to their end."""
    app.extensions["mesh"].dispatcher.drain(services.coordination)
