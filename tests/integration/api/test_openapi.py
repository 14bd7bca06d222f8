"""/api/mesh/openapi.json describes every operation and response; /api/mesh/docs shows it."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from tests.integration.api.client import API, ApiClient

pytestmark = pytest.mark.integration

NETWORK = f"{API}/networks/{{network_id}}"
TASK = f"{NETWORK}/tasks/{{task_id}}"
KEYS = f"{API}/keys"
# (path, method, the error statuses it must document by number)
OPERATIONS = [
    (f"{API}/networks", "post", {422}),
    (f"{API}/networks", "get", {422}),
    (NETWORK, "get", {404}),
    (NETWORK, "delete", {404}),
    (f"{NETWORK}/webhook-secret", "post", {404}),
    (f"{NETWORK}/tasks", "post", {404, 409, 422}),
    (f"{NETWORK}/tasks", "get", {404, 422}),
    (TASK, "get", {404, 422}),
    (f"{TASK}/process", "post", {404, 409}),
    (f"{TASK}/cancel", "post", {404, 409}),
    (f"{TASK}/approve", "post", {404, 409, 422, 503}),
    (f"{TASK}/reject", "post", {404, 409, 422}),
    (f"{TASK}/rating", "post", {404, 409, 422}),
    (f"{TASK}/rating", "get", {404}),
    (f"{TASK}/events", "get", {404, 422, 503}),
    (f"{NETWORK}/agents", "post", {404, 422}),
    (f"{NETWORK}/agents", "get", {404}),
    (f"{NETWORK}/agents/{{agent_id}}", "delete", {404, 409}),
    (f"{NETWORK}/memory", "post", {404, 422}),
    (f"{NETWORK}/memory", "get", {404, 422}),
    (f"{NETWORK}/memory/{{item_id}}/history", "get", {404}),
    (f"{NETWORK}/memory/{{item_id}}/promote", "post", {404}),
    (f"{API}/agent-types", "get", set()),
    (f"{API}/agent-types", "post", {409, 422}),
    (f"{API}/agent-types/{{name}}", "get", {404}),
    (f"{API}/agent-types/{{name}}", "put", {404, 409, 422}),
    (f"{API}/agent-types/{{name}}", "delete", {404, 409}),
    (f"{API}/agent-types/{{name}}/versions/{{version}}", "get", {404}),
    (f"{API}/providers", "get", {401, 403}),
    (KEYS, "post", {401, 403, 422}),
    (KEYS, "get", {401, 403, 422}),
    (f"{KEYS}/{{key_id}}", "delete", {401, 403, 404}),
    (f"{API}/audit", "get", {401, 403, 422}),
    (f"{API}/tenant", "delete", {401, 403, 422, 428}),
    ("/healthz", "get", set()),
    ("/readyz", "get", {503}),
]
ERROR_REF = "#/components/schemas/Error"
OPEN = ("/healthz", "/readyz")
# Path parameters that are not UUIDs, with their schema.
NOT_UUIDS = {
    "key_id": {"type": "string", "minLength": 16, "maxLength": 16},
    "name": {"type": "string", "minLength": 1},
    "version": {"type": "integer", "minimum": 0},
}
ASSETS = f"{API}/docs/assets/"


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


def operations(**known_bugs: pytest.MarkDecorator) -> list[Any]:
    """OPERATIONS as parameters named "get /readyz", marked where a known bug is."""
    params = []
    for path, method, errors in OPERATIONS:
        name = f"{method} {path}"
        marks = [known_bugs[path]] if path in known_bugs else []
        params.append(pytest.param(path, method, errors, id=name, marks=marks))
    return params


@pytest.fixture
def document(client: ApiClient) -> dict[str, Any]:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def lookup(document: dict[str, Any], ref: str) -> Any:
    """What a local reference (#/components/...) names."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_the_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Mesh"
    assert document["info"]["version"]


def test_the_document_passes_the_openapi_validator(document: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")

    validator.validate(document)


def test_every_reference_in_the_document_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        assert lookup(document, ref) is not None


def test_every_schema_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; "#/components/..." refs need the document.
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(("path", "method", "errors"), operations())
def test_the_document_has_the_operation_with_a_summary(
    document: dict[str, Any], path: str, method: str, errors: set[int]
) -> None:
    assert document["paths"][path][method]["summary"]


@pytest.mark.parametrize(("path", "method", "errors"), operations())
def test_every_path_parameter_is_declared_as_a_uuid(
    document: dict[str, Any], path: str, method: str, errors: set[int]
) -> None:
    declared = {
        p["name"]: p
        for p in document["paths"][path].get("parameters", [])
        + document["paths"][path][method].get("parameters", [])
        if p["in"] == "path"
    }

    assert set(declared) == set(re.findall(r"{(\w+)}", path))
    for name, parameter in declared.items():
        assert parameter["required"] is True
        assert parameter["schema"] == NOT_UUIDS.get(name, {"type": "string", "format": "uuid"})


@pytest.mark.parametrize(
    ("path", "method", "errors"),
    operations(),
)
def test_every_error_response_of_the_operation_is_the_error_schema(
    document: dict[str, Any], path: str, method: str, errors: set[int]
) -> None:
    responses = document["paths"][path][method]["responses"]

    assert errors <= {int(code) for code in responses if code != "default"}
    # "default" covers what no number names: malformed JSON (400), 405, 413 and 500.
    assert "default" in responses
    for code, response in responses.items():
        if code == "default" or int(code) >= 400:
            response = lookup(document, response["$ref"]) if "$ref" in response else response
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            assert schema == {"$ref": ERROR_REF}, (code, response)


@pytest.mark.parametrize(
    ("path", "method", "errors"),
    operations(),
)
def test_every_response_with_a_body_documents_its_schema(
    document: dict[str, Any], path: str, method: str, errors: set[int]
) -> None:
    for code, response in document["paths"][path][method]["responses"].items():
        response = lookup(document, response["$ref"]) if "$ref" in response else response
        if code not in ("204", "304"):  # answers without a body
            content = response.get("content", {})
            assert content.get("application/json") or content.get("text/event-stream"), (
                code,
                response,
            )


def test_this_list_covers_every_operation_of_the_document(document: dict[str, Any]) -> None:
    served = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    }

    assert served == {(path, method) for path, method, _errors in OPERATIONS}


@pytest.mark.parametrize(("path", "method", "errors"), operations())
def test_every_api_operation_needs_a_bearer_key_and_documents_401_and_403(
    document: dict[str, Any], path: str, method: str, errors: set[int]
) -> None:
    operation = document["paths"][path][method]

    if path in OPEN:
        assert "security" not in operation
        assert not {"401", "403"} & set(operation["responses"])
    else:
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])


def test_the_docs_ui_offers_authorize_with_a_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "mesh_<id>_<secret>" in scheme["description"]


def test_the_error_schema_is_code_status_message_errors(document: dict[str, Any]) -> None:
    error = lookup(document, ERROR_REF)

    assert set(error["properties"]) == {"code", "status", "message", "errors"}
    assert set(error["required"]) == {"code", "status"}
    assert error["properties"]["code"]["type"] == "integer"


@pytest.mark.parametrize("path", [f"{API}/networks", f"{NETWORK}/tasks", KEYS])
def test_paginated_lists_document_page_page_size_and_x_pagination(
    document: dict[str, Any], path: str
) -> None:
    operation = document["paths"][path]["get"]

    assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}
    assert "X-Pagination" in operation["responses"]["200"]["headers"]


def test_submitting_a_task_documents_202_with_a_location(document: dict[str, Any]) -> None:
    accepted = document["paths"][f"{NETWORK}/tasks"]["post"]["responses"]["202"]

    assert "Location" in accepted["headers"]
    assert accepted["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Task"
    }


def test_creates_document_201_and_deletes_204(document: dict[str, Any]) -> None:
    paths = document["paths"]

    assert "201" in paths[f"{API}/networks"]["post"]["responses"]
    assert "201" in paths[f"{NETWORK}/agents"]["post"]["responses"]
    assert "201" in paths[f"{NETWORK}/memory"]["post"]["responses"]
    assert "201" in paths[KEYS]["post"]["responses"]
    assert "204" in paths[f"{KEYS}/{{key_id}}"]["delete"]["responses"]
    assert "204" in paths[NETWORK]["delete"]["responses"]
    assert "204" in paths[f"{NETWORK}/agents/{{agent_id}}"]["delete"]["responses"]


def test_the_docs_page_loads_its_assets_from_the_app_not_a_cdn(client: ApiClient) -> None:
    response = client.get(f"{API}/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "http://" not in page and "https://" not in page
    assert f"{API}/openapi.json" in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    assert all(asset.startswith(ASSETS) for asset in assets), assets


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
    ],
)
def test_the_docs_assets_are_served_by_the_app(client: ApiClient, name: str, mimetype: str) -> None:
    page = client.get(f"{API}/docs").get_data(as_text=True)
    assert f"{ASSETS}{name}" in page

    response = client.get(f"{ASSETS}{name}")

    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert len(response.get_data()) > 10_000


def test_an_unknown_docs_asset_is_a_json_404(client: ApiClient) -> None:
    assert client.get(f"{ASSETS}nothing-here.js").status_code == 404
    assert client.get(f"{ASSETS}../../../../etc/passwd").status_code == 404
