"""Webhooks in the domain: the subscription's rules, refused addresses, the signature and
the retry spacing."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from uuid import uuid4

import pytest
import standardwebhooks

from meshcore.domain.errors import InvalidInput
from meshcore.domain.webhooks import (
    ENDINGS,
    RetryPolicy,
    TaskSnapshot,
    Webhook,
    headers,
    is_refused_address,
    new_secret,
    payload,
)


def test_a_signed_delivery_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    snapshot = TaskSnapshot(
        task_id=uuid4(),
        network_id=uuid4(),
        event_type="task.completed",
        event_seq=9,
        at=datetime.now(UTC),
        status="completed",
        answer="Dear trial user...",
        score=0.9,
    )
    body = payload(snapshot)
    timestamp = int(datetime.now(UTC).timestamp())
    sent = headers(secret, message_id="msg_1", timestamp=timestamp, body=body)

    verified = standardwebhooks.Webhook(secret).verify(body, sent)

    assert verified["type"] == "task.completed"
    assert verified["data"]["task_id"] == str(snapshot.task_id)
    assert verified["data"]["event_id"] == 9


def test_a_signature_under_another_secret_does_not_verify() -> None:
    body = json.dumps({"type": "task.failed"})
    sent = headers(
        new_secret(), message_id="msg_1", timestamp=int(datetime.now(UTC).timestamp()), body=body
    )
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()).verify(body, sent)


def test_secrets_are_whsec_and_fresh_each_time() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "192.168.1.1",
        "::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "fe80::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert is_refused_address(address, allow_private=False)
    assert not is_refused_address(address, allow_private=True)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not is_refused_address(address, allow_private=False)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("ftp://example.com/hook", "webhook.url"),
        ("http:///no-host", "webhook.url"),
        ("https://user:pw@example.com/", "webhook.url"),
        ("https://example.com/" + "a" * 2000, "webhook.url"),
    ],
)
def test_a_url_mesh_cannot_call_is_refused_naming_the_field(url: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Webhook(url).check("webhook")
    assert caught.value.field == field


def test_unknown_events_are_refused_and_the_endings_are_the_default() -> None:
    assert Webhook("https://example.com/").events == ENDINGS
    with pytest.raises(InvalidInput) as caught:
        Webhook("https://example.com/", events=("step.finished",)).check("config.webhook")
    assert caught.value.field == "config.webhook.events"


def test_backoff_grows_within_its_cap_and_stops_after_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=14, base_seconds=30, max_seconds=21_600)
    rng = random.Random(7)
    for attempt in range(1, 14):
        cap = min(21_600, 30 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng=rng) for _ in range(50)]
        assert all(d is not None and 0 <= d <= cap for d in delays)
    assert policy.delay(14) is None
    # About a day in all, at the most.
    assert sum(min(21_600, 30 * 2 ** (a - 1)) for a in range(1, 14)) < 2 * 86_400
