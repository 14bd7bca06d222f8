"""meshcore/tls.py: TLS settings that do not make a whole stop Mesh with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from meshcore.settings import Settings


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "some.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def test_no_tls_setting_is_plain_http_and_plaintext_redis() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0")
    assert not settings.serves_https


def test_a_certificate_and_its_key_serve_https(pem: Path) -> None:
    assert Settings(tls_cert_file=pem, tls_key_file=pem).serves_https


@pytest.mark.parametrize(
    ("given", "missing"),
    [("tls_cert_file", "MESH_TLS_KEY_FILE"), ("tls_key_file", "MESH_TLS_CERT_FILE")],
)
def test_a_certificate_without_its_key_is_refused(pem: Path, given: str, missing: str) -> None:
    with pytest.raises(ValidationError, match=f"is set but {missing} is not"):
        Settings(**{given: pem})


def test_a_missing_certificate_file_is_named(pem: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"MESH_TLS_CERT_FILE: .*nope.pem does not exist"):
        Settings(tls_cert_file=tmp_path / "nope.pem", tls_key_file=pem)


def test_empty_tls_settings_mean_unset() -> None:
    settings = Settings(tls_cert_file="", tls_key_file="", redis_ca_file="")
    assert not settings.serves_https
    assert settings.redis_ca_file is None


def test_a_redis_ca_for_a_plaintext_url_is_refused(pem: Path) -> None:
    with pytest.raises(ValidationError, match="are for a rediss:// MESH_REDIS_URL"):
        Settings(redis_url="redis://127.0.0.1:6379/0", redis_ca_file=pem)


def test_a_redis_client_certificate_needs_its_key(pem: Path) -> None:
    with pytest.raises(
        ValidationError, match="MESH_REDIS_CERT_FILE is set but MESH_REDIS_KEY_FILE"
    ):
        Settings(redis_url="rediss://redis:6380/0", redis_cert_file=pem)


@pytest.mark.parametrize(
    "query", ["ssl_cert_reqs=none", "ssl_cert_reqs=CERT_OPTIONAL", "ssl_check_hostname=false"]
)
def test_a_rediss_url_that_turns_verification_off_is_refused(query: str) -> None:
    with pytest.raises(ValidationError, match="turns certificate verification off"):
        Settings(redis_url=f"rediss://redis:6380/0?{query}")


def test_a_rediss_url_that_asks_for_verification_is_accepted(pem: Path) -> None:
    url = f"rediss://redis:6380/0?ssl_cert_reqs=required&ssl_ca_certs={pem}"
    assert Settings(redis_url=url, redis_ca_file=pem).redis_url == url


def test_a_settings_error_never_prints_the_secrets_it_read(pem: Path) -> None:
    # pydantic would show the whole input of a model-wide check, shortened in the middle.
    with pytest.raises(ValidationError) as raised:
        Settings(ANTHROPIC_API_KEY="sk-ant-x", tls_key_file=pem)
    assert "sk-ant-x" not in str(raised.value)
