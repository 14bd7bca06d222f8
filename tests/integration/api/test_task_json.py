"""The hot read's hand-built JSON (meshapi.task_json) is the schemas' dump, field for field.

GET .../tasks/<task> answers what `task_body`/`progress_body` build, encoded by orjson; the
marshmallow schemas stay the contract (the OpenAPI document is made from them). Tasks in
several states, read from the record as the route reads them, must give the same JSON value
both ways, and the answer must be the documented Task or TaskProgress, every field of it.
Tasks run in this process: the dispatcher is a fake that delivers the messages here, to the
offline model, when the test drains it.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from flask import Flask

from meshapi.schemas.tasks import TaskProgressSchema, TaskSchema
from meshapi.task_json import progress_body, task_body
from meshcore.bootstrap import Services
from tests.integration.api.client import API, NETWORKS, ApiClient
from tests.integration.api.in_process import app as app
from tests.integration.api.in_process import run
from tests.integration.api.in_process import services as services
from tests.integration.api.in_process import settings as settings

pytestmark = pytest.mark.integration

TaskJson = dict[str, Any]
# Text a client may send that the json module escapes and orjson writes as UTF-8.
NON_ASCII = "Écris l'e-mail de lancement d'Orbit — 日本語, emoji 🚀, \"quotes\" and \\ too"
CONTEXT = {
    "segment": "trial users ✓",
    "nested": {"list": [1, 2.5, None, True, "ß"], "empty": {}, "none": None},
    "ratio": 0.1,
    "big": 10**15,
}


def submit(client: ApiClient, network: dict[str, Any], **body: Any) -> TaskJson:
    response = client.post(f"{NETWORKS}/{network['id']}/tasks", json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def url(task: TaskJson) -> str:
    return f"{NETWORKS}/{task['network_id']}/tasks/{task['id']}"


def dumped(schema: type[TaskSchema] | type[TaskProgressSchema], value: object) -> TaskJson:
    """The schema's dump as JSON carries it: the value the route answered before."""
    return json.loads(json.dumps(schema().dump(value)))


@pytest.fixture
def tasks(
    app: Flask, client: ApiClient, network: dict[str, Any], services: Services
) -> dict[str, TaskJson]:
    """Tasks in several states, by name, as their submission answered."""
    made = {
        "held": submit(client, network, description="Draft the launch email", auto_process=False),
        "planned": submit(
            client,
            network,
            description="Write the launch email from the facts",
            plan=[
                {"key": "facts", "agent": "research", "description": "Find Orbit's facts"},
                {
                    "key": "email",
                    "agent": "content",
                    "description": "Write the email",
                    "depends_on": ["facts"],
                },
            ],
        ),
        "cancelled": submit(client, network, description="Cancel me", auto_process=False),
        "completed": submit(client, network, description=NON_ASCII, context=CONTEXT),
        "revised": submit(
            client,
            network,
            description="Write the launch email for Orbit, our budgeting app, for trial users",
            priority="high",
        ),
    }
    poor = client.post(
        NETWORKS, json={"name": f"poor-{network['id'][:8]}", "config": {"budget": {"tokens": 1}}}
    ).get_json()
    made["failed"] = submit(client, poor, description="Write more than the budget allows")
    assert client.post(f"{url(made['cancelled'])}/cancel").status_code == 202
    run(app, services)
    return made


def read(services: Services, task: TaskJson) -> Any:
    return services.tasks.get(UUID(task["network_id"]), UUID(task["id"]))


def summary(services: Services, task: TaskJson) -> Any:
    return services.tasks.summary(UUID(task["network_id"]), UUID(task["id"]))


def test_the_bodies_are_the_schemas_dumps_in_every_state(
    services: Services, tasks: dict[str, TaskJson]
) -> None:
    found = {name: (read(services, t), summary(services, t)) for name, t in tasks.items()}

    for name, (task, progress) in found.items():
        assert task_body(task) == dumped(TaskSchema, task), name
        assert progress_body(progress) == dumped(TaskProgressSchema, progress), name
    # The states and the parts the comparisons covered.
    statuses = {name: task.status.value for name, (task, _) in found.items()}
    assert statuses == {
        "held": "queued",
        "planned": "completed",
        "cancelled": "cancelled",
        "completed": "completed",
        "revised": "completed",
        "failed": "failed",
    }
    completed, planned = found["completed"][0], found["planned"][0]
    assert completed.result and completed.usage.input_tokens > 0
    assert all(s.step is not None for s in completed.subtasks)
    assert any(s.step and s.step.memory_read for s in planned.subtasks)  # a list of ids
    assert any(h.kind == "plan" for h in completed.history)  # a detail with its subtasks' waves
    assert any(h.kind == "wave" for h in planned.history)  # a detail with a wave
    assert [s.planned.depends_on for s in planned.subtasks[:2]] == [(), ("facts",)]
    assert max(task.iteration for task, _ in found.values()) > 1  # a revision's subtasks
    assert found["failed"][0].error and found["completed"][1].score is not None


def test_each_body_keeps_the_order_of_its_schemas_fields(
    services: Services, tasks: dict[str, TaskJson]
) -> None:
    task, progress = read(services, tasks["completed"]), summary(services, tasks["completed"])

    body, dump = task_body(task), TaskSchema().dump(task)
    assert list(body) == list(dump)
    assert list(body["subtasks"][0]) == list(dump["subtasks"][0])
    assert list(body["subtasks"][0]["step"]) == list(dump["subtasks"][0]["step"])
    assert list(body["history"][0]) == list(dump["history"][0])
    assert list(progress_body(progress)) == list(TaskProgressSchema().dump(progress))


@pytest.fixture
def document(client: ApiClient) -> dict[str, Any]:
    return client.get(f"{API}/openapi.json").get_json()


def validate(body: TaskJson, document: dict[str, Any], component: str) -> None:
    """`body` is the document's `component`, and holds every property it names, at any depth."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    assert_every_property(body, component, document["components"]["schemas"])


def assert_every_property(body: Any, component: str, schemas: dict[str, Any]) -> None:
    properties = schemas[component]["properties"]
    assert set(body) == set(properties), component
    for name, prop in properties.items():
        refs = [prop.get("$ref"), prop.get("items", {}).get("$ref")]
        refs += [p.get("$ref") for p in prop.get("anyOf", [])]
        for ref in filter(None, refs):
            nested = body[name] if isinstance(body[name], list) else [body[name]]
            for item in filter(None, nested):
                assert_every_property(item, ref.rsplit("/", 1)[1], schemas)


def test_the_answers_are_the_dumps_and_the_documented_task(
    client: ApiClient, services: Services, tasks: dict[str, TaskJson], document: dict[str, Any]
) -> None:
    for name, submitted in tasks.items():
        full = client.get(url(submitted))
        brief = client.get(f"{url(submitted)}?view=summary")

        assert (full.status_code, brief.status_code) == (200, 200), name
        assert full.mimetype == brief.mimetype == "application/json"
        task = read(services, submitted)
        assert full.headers["ETag"] == brief.headers["ETag"] == f'"{task.revision}"'
        assert full.get_json() == dumped(TaskSchema, task), name
        assert brief.get_json() == dumped(TaskProgressSchema, summary(services, submitted)), name
        validate(full.get_json(), document, "Task")
        validate(brief.get_json(), document, "TaskProgress")


def test_the_answer_is_utf8_json_of_the_non_ascii_text_sent(
    client: ApiClient, network: dict[str, Any]
) -> None:
    task = submit(client, network, description=NON_ASCII, context=CONTEXT, auto_process=False)

    response = client.get(url(task))

    assert json.dumps(NON_ASCII, ensure_ascii=False).encode() in response.data  # not \u-escaped
    body = json.loads(response.data.decode("utf-8"))
    assert (body["description"], body["context"]) == (NON_ASCII, CONTEXT)


def test_a_context_past_what_orjson_encodes_is_still_answered(
    client: ApiClient, network: dict[str, Any], services: Services, document: dict[str, Any]
) -> None:
    huge = {"id": 2**70, "negative": -(2**65)}
    task = submit(client, network, description="Count it", context=huge, auto_process=False)

    response = client.get(url(task))

    assert response.status_code == 200
    assert response.get_json()["context"] == huge
    assert response.get_json() == dumped(TaskSchema, read(services, task))
    validate(response.get_json(), document, "Task")
