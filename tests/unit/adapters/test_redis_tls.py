"""meshcore/adapters/redis_tls.py: every Redis client gets the same verified TLS options."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import redis

from meshcore.adapters import redis_tls
from meshcore.settings import Settings
from meshworkers.app import create_celery


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_plaintext_and_socket_urls_get_no_tls_options() -> None:
    for url in ("redis://127.0.0.1:6379/0", "unix:///tmp/redis.sock"):
        assert redis_tls.ssl_options(Settings(redis_url=url)) == {}
        assert redis_tls.plain_url(url) == url


def test_rediss_always_requires_a_verified_certificate() -> None:
    options = redis_tls.ssl_options(Settings(redis_url="rediss://redis:6380/0"))
    # No CA given: the system's CAs verify it, never nothing.
    assert options == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def test_the_ca_and_client_certificate_settings_become_options(ca: Path) -> None:
    settings = Settings(
        redis_url="rediss://redis:6380/0",
        redis_ca_file=ca,
        redis_cert_file=ca,
        redis_key_file=ca,
    )
    assert redis_tls.ssl_options(settings) == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(ca),
        "ssl_keyfile": str(ca),
    }


def test_tls_parameters_in_the_url_move_into_the_options(ca: Path) -> None:
    url = f"rediss://:pw@redis:6380/0?ssl_cert_reqs=required&ssl_ca_certs={ca}&health_check_interval=5"
    settings = Settings(redis_url=url)
    assert redis_tls.ssl_options(settings) == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": str(ca),
    }
    assert redis_tls.plain_url(url) == "rediss://:pw@redis:6380/0?health_check_interval=5"


def test_the_redis_py_client_verifies_against_the_ca(ca: Path) -> None:
    client = redis_tls.connect(Settings(redis_url="rediss://redis:6380/0", redis_ca_file=ca))
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert kwargs["ssl_ca_certs"] == str(ca)
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert kwargs.get("ssl_check_hostname", True) is True


def test_celery_broker_and_backend_verify_against_the_same_ca(ca: Path) -> None:
    app = create_celery(Settings(redis_url="rediss://redis:6380/0", redis_ca_file=ca))
    expected = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca)}
    assert app.conf.broker_use_ssl == expected
    assert app.conf.redis_backend_use_ssl == expected
    params = app.backend.connparams
    assert params["connection_class"] is redis.SSLConnection
    assert params["ssl_ca_certs"] == str(ca)
    assert params["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_a_plaintext_celery_app_has_no_tls() -> None:
    app = create_celery(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert app.conf.broker_use_ssl is False
    assert app.conf.redis_backend_use_ssl is None
