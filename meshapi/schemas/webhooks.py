"""Webhooks: a subscription in, a signing secret out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from meshapi.schemas.fields import no_nul
from meshcore.domain.webhooks import ENDINGS, EVENTS, MAX_URL, Webhook, url_problem


def _webhook_url(value: str) -> None:
    if problem := url_problem(value):
        raise ma.ValidationError(f"The URL {problem}.")


class WebhookSchema(ma.Schema):
    url = ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_URL), no_nul, _webhook_url],
        metadata={
            "description": "An http(s) URL Mesh POSTs to; loopback, private, link-local and "
            "metadata addresses are refused unless MESH_WEBHOOK_ALLOW_PRIVATE=true"
        },
    )
    events = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(EVENTS)),
        validate=validate.Length(1, len(EVENTS)),
        load_default=lambda: list(ENDINGS),
        metadata={"description": "The events to deliver; by default the four endings"},
    )

    @ma.post_load
    def _to_webhook(self, data: dict, **_: object) -> Webhook:
        return Webhook(url=data["url"], events=tuple(dict.fromkeys(data["events"])))


class WebhookSecretSchema(ma.Schema):
    webhook_secret = ma.fields.String(
        metadata={"description": "The secret deliveries are signed under (`whsec_...`), shown once"}
    )
