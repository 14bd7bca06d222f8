"""Structured logs: one JSON line per event, from our code and every library, never a secret.

Every line has time, level, event, task_id, network_id, agent, queue and trace_id (null where
they do not apply), so an operator can follow one task across processes with one filter.
Libraries' stdlib log records go through the same processors, redaction included.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from meshcore.telemetry.tracing import current_trace_id

CONTEXT_FIELDS = ("task_id", "network_id", "agent", "queue", "trace_id")
REDACTED = "[redacted]"
# Environment variables whose values are secrets whatever they are called by the provider.
_SECRET_NAME = re.compile(r"(API_KEY|SECRET|TOKEN|PASSWORD|BASIC_AUTH)$", re.IGNORECASE)
# Lists of secrets, comma-separated: each one is redacted on its own.
_SECRET_LISTS = ("MESH_DATA_KEYS",)
_URL_VARIABLES = ("MESH_DATABASE_URL", "MESH_REDIS_URL")
_MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def secrets_in(environ: MutableMapping[str, str]) -> list[str]:
    """The secret values this process knows: keys, tokens, and passwords inside URLs."""
    values = [v for k, v in environ.items() if _SECRET_NAME.search(k) and v]
    for name in _SECRET_LISTS:
        values += [key.strip() for key in (environ.get(name) or "").split(",")]
    for name in _URL_VARIABLES:
        password = urlsplit(environ.get(name) or "").password
        if password:
            values.append(password)
    # Longest first, so a secret containing another is redacted whole.
    return sorted({v for v in values if len(v) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)


class Redactor:
    """Replaces any known secret value, wherever it appears in an event's strings."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = list(secrets)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._secrets:
            for key, value in event.items():
                event[key] = self._clean(value)
        return event

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value


def add_context_fields(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if event.get("trace_id") is None:
        event["trace_id"] = current_trace_id()
    for name in CONTEXT_FIELDS:
        event.setdefault(name, None)
    return event


def configure_logging(level: str = "INFO") -> None:
    level = level.upper()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_context_fields,
        structlog.processors.format_exc_info,
        Redactor(secrets_in(os.environ)),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    # litellm narrates every call at INFO, and httpx every request (its URL, query secrets
    # and all), as the MCP SDK's httpx2 and session logs do; only their problems matter.
    noisy_loggers = (
        "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "httpx2", "httpcore2",
        "mcp",
    )  # fmt: skip
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(logging.WARNING)
