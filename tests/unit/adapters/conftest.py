"""A fresh fakeredis server per test, and a client of it."""

from __future__ import annotations

import fakeredis
import pytest


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server)
