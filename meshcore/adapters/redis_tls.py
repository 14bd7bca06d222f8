"""Redis over TLS: one set of options for redis-py, kombu's transport and Celery's backend.

Each client takes TLS options its own way: redis-py as keyword arguments or URL query,
kombu's transport from `broker_use_ssl` (and, unless told otherwise, verifies nothing on a
rediss:// URL), Celery's result backend from `redis_backend_use_ssl`. Mesh reads them once:
MESH_REDIS_CA_FILE and the client certificate, or the same `ssl_*` parameters in the URL's
query (the form a stock `celery flower` understands), and hands every client the URL without
them plus the options, so no client can end up with half of them. Verification is always
CERT_REQUIRED with the hostname checked; meshcore.tls refuses a URL that asks for less.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from meshcore.settings import Settings
from meshcore.tls import is_tls_redis

_FILE_OPTIONS = {
    "ssl_ca_certs": "redis_ca_file",
    "ssl_certfile": "redis_cert_file",
    "ssl_keyfile": "redis_key_file",
}
_URL_OPTIONS = {*_FILE_OPTIONS, "ssl_cert_reqs", "ssl_check_hostname"}


def plain_url(redis_url: str) -> str:
    """The URL without its TLS query parameters (ssl_options holds them)."""
    if not is_tls_redis(redis_url):
        return redis_url
    parts = urlsplit(redis_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _URL_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(query)))


def ssl_options(settings: Settings) -> dict[str, Any]:
    """The TLS options every Redis client gets: empty unless MESH_REDIS_URL is rediss://."""
    if not is_tls_redis(settings.redis_url):
        return {}
    assert settings.redis_url is not None
    in_url = dict(parse_qsl(urlsplit(settings.redis_url).query))
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    for option, field in _FILE_OPTIONS.items():
        path = getattr(settings, field)
        value = str(path) if path is not None else in_url.get(option)
        if value:
            options[option] = value
    return options


def connect(settings: Settings, **options: Any) -> redis.Redis:
    """A redis-py client of MESH_REDIS_URL, verified against the CA when it is rediss://."""
    if settings.redis_url is None:
        raise ValueError("MESH_REDIS_URL is not set; `mesh serve` starts an embedded Redis")
    return redis.Redis.from_url(plain_url(settings.redis_url), **options, **ssl_options(settings))
