"""Shared fixtures. The servers' URLs come from MESH_TEST_* with this machine's defaults."""

from __future__ import annotations

import os
from typing import Any

import pytest
import structlog

_configure = structlog.configure


def _configure_uncached(*args: Any, **kwargs: Any) -> None:
    # A cached logger keeps the processors it first saw, so structlog.testing.capture_logs
    # would miss every logger some earlier test of the session used: in tests, none is cached.
    _configure(*args, **{**kwargs, "cache_logger_on_first_use": False})


structlog.configure = _configure_uncached

TEST_DATABASE_URL = os.environ.get(
    "MESH_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# A database number of its own, so tests never touch what else lives on the shared Redis.
TEST_REDIS_URL = os.environ.get("MESH_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
# The server secret API keys are hashed under, for every Settings a test builds: on real
# servers an API refuses to start without one (MESH_API_KEY_SECRET).
API_KEY_SECRET = "tests-only-api-key-secret-0123456789abcdef"
# The data key content is sealed under, likewise (MESH_DATA_KEYS); for tests only.
DATA_KEYS = "l8g3IEZ6gD_e67zlRd40SdmYrioTVQIwR1VV5ubZLdg="


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test Postgres with the migrations applied, once per session."""
    from meshcore.adapters.sql.migrate import upgrade

    upgrade(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    return TEST_REDIS_URL
