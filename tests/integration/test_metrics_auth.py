"""/metrics behind MESH_METRICS_TOKEN: the API's and a real worker's, with and without it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping

import httpx
import pytest
from flask import Flask
from structlog.testing import capture_logs

from meshapi.app import create_app
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, DATA_KEYS
from tests.integration.fleet import WorkerSpec, fleet

pytestmark = pytest.mark.integration

TOKEN = "metrics-token-for-tests-0123456789"


def api(database_url: str, redis_url: str, token: str | None) -> Flask:
    return create_app(
        Settings(
            database_url=database_url,
            redis_url=redis_url,
            api_key_secret=API_KEY_SECRET,
            data_keys=DATA_KEYS,
            metrics_token=token,
        )
    )


@pytest.fixture(scope="module")
def guarded(database_url: str, redis_url: str) -> Iterator[Flask]:
    app = api(database_url, redis_url, TOKEN)
    yield app
    app.extensions["mesh"].close()


def assert_refused(status: int, headers: Mapping[str, str], body: dict[str, object]) -> None:
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["code"] == 401 and "Authorization: Bearer" in str(body["message"])
    assert TOKEN not in str(body)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_the_api_refuses_a_scrape_without_the_token(
    guarded: Flask, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = guarded.test_client().get("/metrics", headers=headers)
    assert_refused(response.status_code, response.headers, response.get_json())
    assert "mesh_http_requests_total" not in response.get_data(as_text=True)


def test_the_api_serves_a_scrape_with_the_token(guarded: Flask) -> None:
    response = guarded.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert "mesh_http_requests_total" in response.get_data(as_text=True)


def test_without_a_token_metrics_stay_open_and_healthz_needs_nothing(
    database_url: str, redis_url: str, guarded: Flask
) -> None:
    app = api(database_url, redis_url, None)
    try:
        assert app.test_client().get("/metrics").status_code == 200
    finally:
        app.extensions["mesh"].close()
    assert guarded.test_client().get("/healthz").status_code == 200


def test_the_token_stays_out_of_the_settings_repr_and_logs(
    database_url: str, redis_url: str
) -> None:
    with capture_logs() as logs:
        app = api(database_url, redis_url, TOKEN)
        app.test_client().get("/metrics", headers={"Authorization": "Bearer wrong"})
        app.extensions["mesh"].close()
    assert TOKEN not in repr(app.extensions["mesh"].settings)
    assert TOKEN not in repr(logs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_worker_serves_its_metrics_only_with_the_token(database_url: str, redis_url: str) -> None:
    port = free_port()
    own_redis = redis_url.rsplit("/", 1)[0] + "/10"
    spec = WorkerSpec("metrics-auth@test", ["coordinator"], concurrency=1, metrics_port=port)
    with fleet(database_url, own_redis, [spec], env={"MESH_METRICS_TOKEN": TOKEN}):
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 20
        while True:
            try:
                refused = httpx.get(url, timeout=5)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert_refused(refused.status_code, refused.headers, refused.json())
        wrong = httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert wrong.status_code == 401
        served = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in served.text
