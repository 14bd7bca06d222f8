"""Redis URLs as each client spells them: redis-py says unix://, kombu says redis+socket://."""

from __future__ import annotations


def kombu_url(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url
