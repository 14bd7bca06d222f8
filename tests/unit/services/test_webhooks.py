"""Webhook deliveries over fakes: a delivery per wanted event, attempts with backoff, each
attempt in the task's log, and the refusals at registration."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
import standardwebhooks

from meshcore.domain.errors import InvalidInput
from meshcore.domain.network import NetworkConfig
from meshcore.domain.task import Priority, Task, TaskStatus
from meshcore.domain.webhooks import DeliveryStatus, RetryPolicy, Webhook
from meshcore.ports import DeliveryRef
from meshcore.services.networks import NetworkService
from meshcore.services.recovery import Sweeper
from meshcore.services.webhooks import WebhookService
from tests.fakes import FakeClock, FakeMesh, FakeWebhookSender

HOOK = "https://hooks.example.com/mesh"


@pytest.fixture
def mesh() -> FakeMesh:
    return FakeMesh.build("acme")


def service(mesh: FakeMesh, sender: FakeWebhookSender, attempts: int = 3) -> WebhookService:
    return WebhookService(
        uow=mesh.uow,
        sender=sender,
        dispatcher=mesh.dispatcher,
        clock=mesh.clock,
        policy=RetryPolicy(max_attempts=attempts, base_seconds=1, max_seconds=2),
    )


def finished_task(
    mesh: FakeMesh, webhook: Webhook | None, config: NetworkConfig | None = None
) -> Task:
    network = mesh.create_network(config)
    task = mesh.tasks.submit(
        network.id,
        description="Write the launch email for Orbit",
        context={},
        priority=Priority.NORMAL,
        webhook=webhook,
    )
    mesh.drain()
    done = mesh.tasks.get(network.id, task.id)
    assert done.status is TaskStatus.COMPLETED
    return done


def deliveries(mesh: FakeMesh, task_id: UUID) -> list:
    with mesh.uow("acme") as uow:
        return uow.webhooks.for_task(task_id)


def test_a_delivery_is_made_for_each_wanted_event_and_none_for_the_others(
    mesh: FakeMesh,
) -> None:
    task = finished_task(mesh, Webhook(HOOK, events=("task.status", "task.completed")))

    made = deliveries(mesh, task.id)

    wanted = [e for e in task.history if e.type in ("task.status", "task.completed")]
    assert [(d.event_seq, d.event_type) for d in made] == [(e.seq, e.type) for e in wanted]
    assert made[-1].event_type == "task.completed"
    assert all(d.status is DeliveryStatus.PENDING for d in made)


def test_by_default_only_the_ending_is_delivered(mesh: FakeMesh) -> None:
    task = finished_task(mesh, Webhook(HOOK))
    assert [d.event_type for d in deliveries(mesh, task.id)] == ["task.completed"]


def test_a_task_without_its_own_webhook_takes_its_networks(mesh: FakeMesh) -> None:
    task = finished_task(mesh, None, NetworkConfig(webhook=Webhook(HOOK)))
    assert task.webhook == Webhook(HOOK)
    assert len(deliveries(mesh, task.id)) == 1


def test_no_webhook_no_delivery(mesh: FakeMesh) -> None:
    task = finished_task(mesh, None)
    assert deliveries(mesh, task.id) == []


def test_a_receiver_failing_twice_gets_the_third_attempt_each_one_in_the_log(
    mesh: FakeMesh,
) -> None:
    task = finished_task(mesh, Webhook(HOOK))
    sender = FakeWebhookSender(500, 500, 200)
    webhooks = service(mesh, sender)
    ref = DeliveryRef("acme", deliveries(mesh, task.id)[0].id)

    assert webhooks.deliver(ref) is DeliveryStatus.PENDING
    assert webhooks.deliver(ref) is None  # not due yet: a duplicate message does nothing
    mesh.clock.advance(3)
    assert webhooks.deliver(ref) is DeliveryStatus.PENDING
    mesh.clock.advance(3)
    assert webhooks.deliver(ref) is DeliveryStatus.DELIVERED

    history = mesh.tasks.get(task.network_id, task.id).history
    attempts = [e for e in history if e.type == "webhook.attempt"]
    assert [a.detail["status_code"] for a in attempts] == [500, 500, 200]
    assert [a.detail["outcome"] for a in attempts] == ["pending", "pending", "delivered"]
    assert history[-4].type == "task.completed"  # the attempts follow the end
    assert [r for r, _ in mesh.dispatcher.webhooks] == [ref, ref]  # the two retries
    # Every attempt is the same message, signed under the network's secret.
    assert len({s.body for s in sender.sent}) == 1
    assert {s.headers["webhook-id"] for s in sender.sent} == {f"msg_{ref.delivery_id.hex}"}


def test_the_signature_verifies_under_the_networks_secret() -> None:
    # The verifier takes only a timestamp within 5 minutes of its own clock.
    mesh = FakeMesh.build("acme", clock=FakeClock(datetime.now(UTC)))
    network = mesh.create_network(NetworkConfig(webhook=Webhook(HOOK)))
    assert network.webhook_secret is not None
    task = mesh.tasks.submit(
        network.id, description="Write it", context={}, priority=Priority.NORMAL
    )
    mesh.drain()
    sender = FakeWebhookSender()
    service(mesh, sender).deliver(DeliveryRef("acme", deliveries(mesh, task.id)[0].id))

    sent = sender.sent[0]
    body = standardwebhooks.Webhook(network.webhook_secret).verify(sent.body, sent.headers)
    assert body["data"]["task_id"] == str(task.id)
    assert body["data"]["status"] == "completed"


def test_a_receiver_that_keeps_failing_is_given_up_on(mesh: FakeMesh) -> None:
    task = finished_task(mesh, Webhook(HOOK))
    webhooks = service(mesh, FakeWebhookSender(500, 500, 500, 500), attempts=2)
    ref = DeliveryRef("acme", deliveries(mesh, task.id)[0].id)
    webhooks.deliver(ref)
    mesh.clock.advance(3)
    assert webhooks.deliver(ref) is DeliveryStatus.FAILED
    mesh.clock.advance(3600)
    assert webhooks.deliver(ref) is None


def test_the_sweeper_sends_a_delivery_whose_message_was_lost(mesh: FakeMesh) -> None:
    task = finished_task(mesh, Webhook(HOOK))
    sent: list[DeliveryRef] = []
    sweeper = Sweeper(
        finder=mesh.uow,
        coordination=lambda _: mesh.coordination,
        clock=mesh.clock,
        stall_seconds=90,
        send_delivery=sent.append,
    )
    sweeper.sweep()
    assert sent == []  # within its grace: its own message may still come
    mesh.clock.advance(60)
    sweeper.sweep()
    assert sent == [DeliveryRef("acme", deliveries(mesh, task.id)[0].id)]


def test_a_refused_url_is_refused_at_registration_and_nothing_is_stored(
    mesh: FakeMesh,
) -> None:
    networks = NetworkService(
        tenant_id="acme",
        uow=mesh.uow,
        memory=mesh.store,
        activity=mesh.networks._activity,
        clock=mesh.clock,
        webhooks=FakeWebhookSender(refused=["http://10.0.0.1/hook"]),
    )
    with pytest.raises(InvalidInput) as caught:
        networks.create(
            name="n",
            description="",
            config=NetworkConfig(webhook=Webhook("http://10.0.0.1/hook")),
        )
    assert caught.value.field == "config.webhook.url"
    assert mesh.database.committed.networks == {}


def test_rotating_the_secret_changes_what_signs(mesh: FakeMesh) -> None:
    network = mesh.create_network()
    rotated = mesh.networks.rotate_webhook_secret(network.id)
    assert rotated.startswith("whsec_") and rotated != network.webhook_secret
    with mesh.uow("acme") as uow:
        assert uow.networks.webhook_secret(network.id) == rotated


def test_the_event_stream_ends_after_the_webhook_attempts_recorded_so_far(
    mesh: FakeMesh,
) -> None:
    task = finished_task(mesh, Webhook(HOOK))
    service(mesh, FakeWebhookSender(200)).deliver(
        DeliveryRef("acme", deliveries(mesh, task.id)[0].id)
    )
    events = [e for e in mesh.tasks.events(task.network_id, task.id) if e is not None]
    assert [e.type for e in events[-2:]] == ["task.completed", "webhook.attempt"]
    assert "result" in events[-2].detail
