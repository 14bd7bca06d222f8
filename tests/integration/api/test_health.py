"""/healthz and /readyz, at the root, for load balancers and probes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from meshapi.app import create_app
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.api.client import ApiClient, check_error_body

pytestmark = pytest.mark.integration

# Nothing listens on port 1: connections are refused at once.
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/test"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/9"


@pytest.fixture
def unreachable_app() -> Iterator[Flask]:
    """An app whose database and Redis are both down."""
    app = create_app(
        Settings(
            database_url=UNREACHABLE_DATABASE,
            redis_url=UNREACHABLE_REDIS,
            api_key_secret=API_KEY_SECRET,
            data_keys=DATA_KEYS,
        )
    )
    yield app
    app.extensions["mesh"].close()


def test_healthz_answers_ok_without_a_key(client: ApiClient) -> None:
    response = client.use_key(None).get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_the_database_and_redis_reachable_without_a_key(
    client: ApiClient,
) -> None:
    response = client.use_key(None).get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": True, "redis": True},
    }


def test_healthz_stays_ok_while_the_database_and_redis_are_down(unreachable_app: Flask) -> None:
    response = unreachable_app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_503_naming_what_is_down(unreachable_app: Flask) -> None:
    response = unreachable_app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.get_json()["errors"]["checks"] == {"database": False, "redis": False}


def test_readyz_503_body_is_the_error_shape(
    unreachable_app: Flask, error_schema: dict[str, Any]
) -> None:
    response = unreachable_app.test_client().get("/readyz")

    assert response.status_code == 503
    check_error_body(response, error_schema)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_is_at_the_root_not_under_the_api(client: ApiClient, path: str) -> None:
    assert client.get(path).status_code == 200
    assert client.get(f"/api/mesh{path}").status_code == 404
