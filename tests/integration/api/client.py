"""A test client that holds every error body to the documented Error schema, and its checks."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import jsonschema
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from meshapi.schemas.errors import ErrorSchema
from meshcore.domain.keys import ALL_SCOPES, Scope

API = "/api/mesh"
NETWORKS = f"{API}/networks"


class ApiClient(FlaskClient):
    """Any response of 400 or above, in any test, must be the documented Error shape.

    Every request carries the client's key (`use_key`); a request that passes an
    Authorization header of its own sends that one instead.
    """

    error_schema: dict[str, Any]  # components.schemas.Error of the served OpenAPI document
    api_key: str | None = None

    def use_key(self, key: str | None) -> ApiClient:
        """Send `Authorization: Bearer <key>` from now on (None: no Authorization at all)."""
        self.api_key = key
        if key is None:
            self.environ_base.pop("HTTP_AUTHORIZATION", None)
        else:
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return self

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if response.status_code >= 400:
            check_error_body(response, self.error_schema)
        return response


def new_key(app: Flask, tenant: str, scopes: frozenset[Scope] = ALL_SCOPES) -> str:
    """A real key of `tenant`, made by the app's key service as `mesh keys create` makes one."""
    _key, text = app.extensions["mesh"].keys.create(tenant_id=tenant, scopes=scopes, name="tests")
    return text


def memory_url(network: dict[str, Any]) -> str:
    return f"{NETWORKS}/{network['id']}/memory"


def add_memory(client: ApiClient, network: dict[str, Any], **body: Any) -> dict[str, Any]:
    """POST an item (`body`) to the network's memory; the item answered with 201."""
    response = client.post(memory_url(network), json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check_error_body(response: TestResponse, documented: dict[str, Any]) -> dict[str, Any]:
    """The body is JSON in the Error shape, and its code and status match the response's."""
    text = response.get_data(as_text=True)
    assert response.mimetype == "application/json", f"{response.status}: {text[:200]}"
    body = response.get_json()
    assert ErrorSchema().validate(body) == {}, body
    jsonschema.validate(body, documented, cls=jsonschema.Draft202012Validator)
    assert body["code"] == response.status_code
    assert body["status"] == HTTPStatus(response.status_code).phrase
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    return body


def assert_error(
    response: TestResponse, status: int, *, field: str | None, problem: str
) -> dict[str, Any]:
    """A `status` error whose message or `errors` names `field` and whose text says `problem`."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    if field is not None:
        assert names(body, field), f"{field!r} is not named in {body}"
    said = " ".join([body["message"], *problems(body.get("errors"))]).lower()
    assert problem.lower() in said, f"{problem!r} is not said in {body}"
    return body


def names(body: dict[str, Any], field: str) -> bool:
    """Whether `errors` has the field's path (after its location), or the message names it."""
    if any(path == field or path.partition(".")[2] == field for path in paths(body.get("errors"))):
        return True
    return re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])", body["message"]) is not None


def paths(errors: object, prefix: str = "") -> list[str]:
    """Dotted paths in webargs' nested errors: {"json": {"agents": {"0": ...}}} -> json.agents.0"""
    if not isinstance(errors, dict):
        return []
    found = []
    for key, value in errors.items():
        # "_schema" holds the problems of the object itself, as in meshapi.errors.
        path = prefix if key == "_schema" else f"{prefix}.{key}".strip(".")
        found += [path, *paths(value, path)]
    return found


def problems(errors: object) -> list[str]:
    if isinstance(errors, dict):
        return [p for value in errors.values() for p in problems(value)]
    if isinstance(errors, list):
        return [str(p) for p in errors]
    return [str(errors)] if errors is not None else []
