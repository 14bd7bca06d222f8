"""Requests per API key (MESH_RATE_LIMIT), counted on Mesh's Redis by flask-limiter so that
every API process shares one count.

Only authenticated requests count, each against its key's id: the limiter's hook runs after
the key check (auth.install comes first), so a request without a valid key is refused before
it counts, and /healthz, /readyz, /metrics and the OpenAPI document and docs, which have no
caller, are never limited. A counted answer carries RateLimit-Limit, RateLimit-Remaining and
RateLimit-Reset (in seconds, as the IETF draft has it, not a timestamp); a refusal is a 429
in Mesh's error shape with Retry-After.

While Redis is away each process counts in its own memory (flask-limiter's in-memory
fallback) and looks for Redis again after 1, 2, 4 ... 32 s, so the API goes on answering,
limited per process instead of fleet-wide; short socket timeouts keep a hung Redis from
holding requests.
"""

from __future__ import annotations

import math
import time

import redis
import structlog
from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import StorageError
from werkzeug.exceptions import RequestEntityTooLarge

from meshapi import auth
from meshcore.adapters.redis_tls import plain_url, ssl_options
from meshcore.settings import Settings

log = structlog.get_logger(__name__)

STRATEGY = "sliding-window-counter"  # two Redis round trips a request; no burst at a window's edge
REDIS_TIMEOUT_SECONDS = 1.0
STORAGE_PREFIX = "mesh-rate"
LIMIT, REMAINING, RESET = "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Count each key's requests against MESH_RATE_LIMIT (answers the limiter, or None when
    it is `none`), and refuse a body past MAX_CONTENT_LENGTH however it is sent."""
    limiter = None
    if settings.rate_limit != "none" and settings.redis_url is not None:
        limiter = _count_requests(app, settings, settings.redis_url)
    # After the count: the body of a caller already refused is never read.
    app.before_request(_refuse_long_stream)
    return limiter


def _count_requests(app: Flask, settings: Settings, redis_url: str) -> Limiter:
    limiter = Limiter(
        key_func=lambda: auth.principal().key_id,
        application_limits=[settings.rate_limit],
        storage_uri=storage_uri(redis_url),
        storage_options={
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            "key_prefix": STORAGE_PREFIX,
            **ssl_options(settings),
        },
        strategy=STRATEGY,
        headers_enabled=False,  # ours below: flask-limiter's Reset is a timestamp
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.request_filter(_has_no_caller)
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _refused(exc: RateLimitExceeded) -> tuple[dict, int]:
        message = f"rate limit of {exc.description} for this API key exceeded"
        if (retry_after := _seconds_to_reset(limiter)) is not None:
            message += f"; retry after {retry_after} s"
        return {"code": 429, "status": "Too Many Requests", "message": message}, 429

    @app.after_request
    def _headers(response: Response) -> Response:
        if (current := limiter.current_limit) is None:
            return response
        reset = _seconds_to_reset(limiter)
        if reset is None:
            return response
        response.headers[LIMIT] = str(current.limit.amount)
        response.headers[REMAINING] = str(current.remaining)
        response.headers[RESET] = str(reset)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(reset)
        return response

    return limiter


def storage_uri(redis_url: str) -> str:
    """MESH_REDIS_URL as `limits` spells it: a socket is redis+unix://, TLS options apart."""
    url = plain_url(redis_url)
    if url.startswith("unix://"):
        return "redis+unix://" + url.removeprefix("unix://")
    return url


def _refuse_long_stream() -> None:
    """A chunked body (no Content-Length) longer than the limit: 413, as a declared one gets.

    Werkzeug stops reading such a stream at the limit and hands the view what it read, so an
    oversized body would reach the schemas cut short (a 400 for broken JSON, or worse, a
    prefix that parses).
    """
    limit = request.max_content_length
    if request.content_length is not None or limit is None:
        return
    if not request.environ.get("wsgi.input_terminated"):
        return  # no server-terminated stream: werkzeug reads no body at all
    if len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _has_no_caller() -> bool:
    return "principal" not in g


def _seconds_to_reset(limiter: Limiter) -> int | None:
    """Whole seconds until the request's limit frees a request (None: not known)."""
    current = limiter.current_limit
    if current is None:
        return None
    try:
        reset_at = current.window.reset_time  # one read a request: RequestLimit keeps it
    except (redis.RedisError, StorageError) as exc:
        # Redis went away after the count: the answer goes out without the headers.
        log.warning("rate_limit.window_unavailable", error=type(exc).__name__)
        return None
    return max(1, math.ceil(reset_at - time.time()))
