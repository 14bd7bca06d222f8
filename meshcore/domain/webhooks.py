"""Webhooks: what a network or task subscribes to, the addresses Mesh refuses to call, the
Standard Webhooks signature of a delivery, and when a failed delivery is tried again.

The signature follows https://www.standardwebhooks.com: headers `webhook-id`,
`webhook-timestamp` and `webhook-signature`, the last `v1,` + base64 HMAC-SHA256 of
`id.timestamp.body` under the secret's bytes (`whsec_` + base64).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from meshcore.domain.errors import InvalidInput

ENDINGS = ("task.completed", "task.failed", "task.cancelled", "task.timed_out")
# A plan waiting for a person to approve it (see config.approval).
AWAITING_APPROVAL = "task.awaiting_approval"
EVENTS = (*ENDINGS, "task.status", AWAITING_APPROVAL)
MAX_URL = 2000
SECRET_PREFIX = "whsec_"
# The `kind` of the event a delivery attempt adds to its task's log (event type
# `webhook.attempt`): the one event recorded after a task's final one.
ATTEMPT_KIND = "webhook"


@dataclass(frozen=True)
class Webhook:
    """Where to POST a task's events, and which of them (`events`, by public name)."""

    url: str
    events: tuple[str, ...] = ENDINGS

    def check(self, field: str) -> None:
        """InvalidInput naming `field`.url or `field`.events for a webhook Mesh cannot call."""
        if problem := url_problem(self.url):
            raise InvalidInput(f"{field}.url", problem)
        unknown = [e for e in self.events if e not in EVENTS]
        if unknown or not self.events:
            raise InvalidInput(f"{field}.events", f"each must be one of {', '.join(EVENTS)}")

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def to_json(self) -> dict[str, object]:
        return {"url": self.url, "events": list(self.events)}

    @classmethod
    def from_json(cls, data: object) -> Webhook | None:
        if not isinstance(data, dict):
            return None
        return cls(url=str(data["url"]), events=tuple(data.get("events") or ENDINGS))


def url_problem(url: str) -> str | None:
    """What is wrong with the shape of a webhook URL, or None."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


def is_refused_address(address: str, *, allow_private: bool) -> bool:
    """Whether Mesh refuses to call this IP: loopback, private, link-local (cloud metadata),
    multicast and every other non-public address, unless private receivers are allowed."""
    if allow_private:
        return False
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not ip.is_global or ip.is_multicast


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, *, message_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header value of `body` under `secret`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, *, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id=message_id, timestamp=timestamp, body=body),
    }


@dataclass(frozen=True)
class TaskSnapshot:
    """What a delivery tells of its task, at the event it delivers."""

    task_id: UUID
    network_id: UUID
    event_type: str
    event_seq: int
    at: datetime
    status: str
    answer: str | None = None
    score: float | None = None
    error: str | None = None


def payload(snapshot: TaskSnapshot) -> str:
    """The JSON body of a delivery: the same on every attempt, so its signature is too."""
    s = snapshot
    return json.dumps(
        {
            "type": s.event_type,
            "timestamp": s.at.isoformat(),
            "data": {
                "task_id": str(s.task_id),
                "network_id": str(s.network_id),
                "status": s.status,
                "revision": s.event_seq,
                "event_id": s.event_seq,
                "answer": s.answer,
                "score": s.score,
                "error": s.error,
            },
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one delivery, and their spacing: exponential with full jitter, capped."""

    max_attempts: int = 14
    base_seconds: float = 30.0
    max_seconds: float = 21_600.0

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float | None:
        """Seconds to wait after failed attempt `attempt` (from 1); None once none is left."""
        if attempt >= self.max_attempts:
            return None
        cap = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(0, cap)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """One event of one task to deliver to the task's webhook, and how far it got."""

    id: UUID
    tenant_id: str
    task_id: UUID
    network_id: UUID
    event_seq: int
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime


@dataclass(frozen=True)
class Attempt:
    """What one POST to a receiver came to."""

    status_code: int | None
    latency_ms: float
    error: str | None = None

    @property
    def is_delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
