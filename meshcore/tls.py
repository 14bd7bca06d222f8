"""Encryption in transit: which TLS settings go together, checked when Settings are read.

A half-configured TLS setting must stop Mesh at start with a message naming the setting,
never fall back to plaintext or to an unverified connection: a certificate without its key,
a Redis CA for a URL that is not rediss://, or a rediss:// URL that turns verification off.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from meshcore.settings import Settings

# The Settings fields that name a certificate, key or CA file.
FILE_SETTINGS = (
    "tls_cert_file",
    "tls_key_file",
    "redis_ca_file",
    "redis_cert_file",
    "redis_key_file",
)
TLS_REDIS_SCHEME = "rediss"
# The spellings redis-py, kombu and Celery accept for "verify the server's certificate".
VERIFYING = {"required", "CERT_REQUIRED"}


def check_settings(settings: Settings) -> None:
    """Raise ValueError naming the setting when the TLS settings do not make a whole."""
    check_pair(
        "MESH_TLS_CERT_FILE", settings.tls_cert_file, "MESH_TLS_KEY_FILE", settings.tls_key_file
    )
    check_pair(
        "MESH_REDIS_CERT_FILE",
        settings.redis_cert_file,
        "MESH_REDIS_KEY_FILE",
        settings.redis_key_file,
    )
    check_files(**{f"MESH_{name.upper()}": getattr(settings, name) for name in FILE_SETTINGS})
    redis_files = (settings.redis_ca_file, settings.redis_cert_file)
    check_redis(settings.redis_url, has_tls_files=any(f is not None for f in redis_files))


def check_pair(cert_name: str, cert: Path | None, key_name: str, key: Path | None) -> None:
    """A certificate and its private key: both set, or neither."""
    if (cert is None) != (key is None):
        missing = key_name if key is None else cert_name
        given = cert_name if key is None else key_name
        raise ValueError(f"{given} is set but {missing} is not: set both, or neither")


def check_files(**files: Path | None) -> None:
    """Every file a TLS setting names exists, so a typo stops Mesh here, not at a handshake."""
    for name, path in files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{name}: {path} does not exist or is not a file")


def is_tls_redis(redis_url: str | None) -> bool:
    return redis_url is not None and urlsplit(redis_url).scheme == TLS_REDIS_SCHEME


def check_redis(redis_url: str | None, *, has_tls_files: bool) -> None:
    """Redis's TLS files only with rediss://; a rediss:// URL never turns verification off."""
    if has_tls_files and not is_tls_redis(redis_url):
        raise ValueError(
            "MESH_REDIS_CA_FILE, MESH_REDIS_CERT_FILE and MESH_REDIS_KEY_FILE are for a "
            "rediss:// MESH_REDIS_URL (Redis over TLS); the URL is not one"
        )
    if not is_tls_redis(redis_url):
        return
    assert redis_url is not None
    for name, value in parse_qsl(urlsplit(redis_url).query):
        if (name == "ssl_cert_reqs" and value not in VERIFYING) or (
            name == "ssl_check_hostname" and value.lower() in {"false", "0", "no", "n", "off"}
        ):
            raise ValueError(
                f"MESH_REDIS_URL: {name}={value} turns certificate verification off; Mesh "
                "always verifies Redis's certificate (give its CA in MESH_REDIS_CA_FILE)"
            )
