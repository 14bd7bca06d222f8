"""Mesh, the blocking client, against a scripted API."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from meshclient import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Mesh,
    NotFound,
    NotModified,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    Unprocessable,
    WaitTimeout,
)
from tests.client.fakes import (
    API_KEY,
    BASE_URL,
    NETWORK_ID,
    TASK_ID,
    ScriptedApi,
    error,
    summary,
    task,
    untrusted_certificate,
)


def mesh_for(api: ScriptedApi, sleeps: list[float] | None = None, **options: object) -> Mesh:
    slept = sleeps if sleeps is not None else []
    return Mesh(BASE_URL, API_KEY, transport=api.transport, sleep=slept.append, **options)


def test_every_request_carries_the_key_and_creates_send_json_with_an_idempotency_key() -> None:
    network = {"id": NETWORK_ID, "name": "launch team", "agents": []}
    api = ScriptedApi(httpx.Response(201, json=network))

    with mesh_for(api) as mesh:
        created = mesh.create_network("launch team", config={"max_iterations": 2})

    assert created == network
    sent = api.requests[0]
    assert sent.method == "POST"
    assert sent.url == f"{BASE_URL}/api/mesh/networks"
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["Content-Type"] == "application/json"
    assert uuid.UUID(sent.headers["Idempotency-Key"]).version == 4
    assert api.bodies() == [{"name": "launch team", "config": {"max_iterations": 2}}]


def test_submit_reuses_its_idempotency_key_on_a_retry_after_a_503() -> None:
    api = ScriptedApi(
        error(503, "the database does not answer", **{"Retry-After": "2"}),
        httpx.Response(202, json=task(), headers={"Location": f"/api/mesh/tasks/{TASK_ID}"}),
    )
    sleeps: list[float] = []

    with mesh_for(api, sleeps) as mesh:
        submitted = mesh.submit(NETWORK_ID, "Write the launch email", priority="high")

    assert submitted["id"] == TASK_ID
    keys = [r.headers["Idempotency-Key"] for r in api.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert api.bodies()[0] == api.bodies()[1]
    assert api.bodies()[0] == {
        "description": "Write the launch email",
        "priority": "high",
        "auto_process": True,
    }
    assert sleeps == [2.0]


def test_a_given_idempotency_key_is_sent_as_it_is() -> None:
    api = ScriptedApi(httpx.Response(201, json={"id": "m1"}))

    with mesh_for(api) as mesh:
        mesh.add_memory(NETWORK_ID, "fact", "Orbit costs $4.99", idempotency_key="memo-1")

    assert api.requests[0].headers["Idempotency-Key"] == "memo-1"


def test_an_idempotency_key_that_is_not_printable_ascii_is_refused_before_sending() -> None:
    api = ScriptedApi()

    with mesh_for(api) as mesh, pytest.raises(ValueError, match="idempotency_key"):
        mesh.submit(NETWORK_ID, "x", idempotency_key="clé\n")

    assert api.requests == []


def test_retry_after_is_honoured_on_a_429() -> None:
    api = ScriptedApi(
        error(429, "too many requests", **{"Retry-After": "7"}),
        httpx.Response(200, json=[], headers={"X-Pagination": '{"total": 0, "total_pages": 0}'}),
    )
    sleeps: list[float] = []

    with mesh_for(api, sleeps) as mesh:
        page = mesh.list_networks()

    assert list(page) == [] and page.total == 0
    assert sleeps == [7.0]


def test_without_retry_after_the_waits_back_off_within_their_bounds() -> None:
    api = ScriptedApi(
        httpx.ConnectError("refused"),
        error(503, "down"),
        error(503, "down"),
        httpx.Response(200, json=task()),
    )
    sleeps: list[float] = []

    with mesh_for(api, sleeps) as mesh:
        mesh.get_task(NETWORK_ID, TASK_ID)

    assert len(sleeps) == 3
    assert all(0 <= s <= bound for s, bound in zip(sleeps, [0.5, 1.0, 2.0], strict=True))


def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    api = ScriptedApi(*[error(503, "down", **{"Retry-After": "1"}) for _ in range(3)])
    sleeps: list[float] = []

    with mesh_for(api, sleeps, retries=2) as mesh, pytest.raises(ServerError) as raised:
        mesh.get_network(NETWORK_ID)

    assert len(api.requests) == 3
    assert raised.value.attempts == 3 and raised.value.retry_after == 1.0
    assert sleeps == [1.0, 1.0]


def test_a_retry_after_too_long_to_sleep_through_is_handed_to_the_caller() -> None:
    api = ScriptedApi(error(429, "tasks in flight", **{"Retry-After": "3600"}))

    with mesh_for(api) as mesh, pytest.raises(RateLimited) as raised:
        mesh.list_tasks(NETWORK_ID)

    assert raised.value.retry_after == 3600.0 and len(api.requests) == 1


def test_connection_errors_are_retried_then_raised_as_a_transport_error() -> None:
    api = ScriptedApi(*[httpx.ConnectError("connection refused") for _ in range(4)])

    with mesh_for(api) as mesh, pytest.raises(TransportError) as raised:
        mesh.providers()

    assert len(api.requests) == 4
    assert raised.value.attempts == 4
    assert "connection refused" in str(raised.value)
    assert "GET /api/mesh/providers" in str(raised.value)


def test_a_certificate_the_client_does_not_trust_is_not_tried_again() -> None:
    api = ScriptedApi(untrusted_certificate())

    with mesh_for(api) as mesh, pytest.raises(TransportError) as raised:
        mesh.providers()

    assert len(api.requests) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)


def test_other_errors_are_not_retried() -> None:
    api = ScriptedApi(error(500, "a bug"))

    with mesh_for(api) as mesh, pytest.raises(ServerError):
        mesh.list_networks()

    assert len(api.requests) == 1


def test_create_key_is_sent_once_even_on_a_503() -> None:
    api = ScriptedApi(error(503, "down", **{"Retry-After": "1"}))

    with mesh_for(api) as mesh, pytest.raises(ServerError):
        mesh.create_key(scopes=["read"], name="backend")

    assert len(api.requests) == 1
    assert "Idempotency-Key" not in api.requests[0].headers


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, ApiError),
        (415, BadRequest),
        (422, Unprocessable),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
    ],
)
def test_an_error_raises_the_exception_of_its_status_with_the_body(
    status: int, exception: type[ApiError]
) -> None:
    body = {
        "code": status,
        "status": "Some Phrase",
        "message": "the plan names an agent the network lacks",
        "errors": {"json": {"plan": ["unknown agent: nobody"]}},
    }
    api = ScriptedApi(httpx.Response(status, json=body))

    with mesh_for(api, retries=0) as mesh, pytest.raises(exception) as raised:
        mesh.submit(
            NETWORK_ID, "Write it", plan=[{"key": "a", "agent": "content", "description": "x"}]
        )

    assert type(raised.value) is exception
    assert raised.value.status == status
    assert raised.value.body == body
    assert raised.value.message == "the plan names an agent the network lacks"
    assert raised.value.errors == {"json": {"plan": ["unknown agent: nobody"]}}
    assert f"POST /api/mesh/networks/{NETWORK_ID}/tasks answered {status}" in str(raised.value)


def test_an_error_that_is_not_json_still_says_what_came_back() -> None:
    api = ScriptedApi(httpx.Response(502, text="<html>Bad Gateway</html>"))

    with mesh_for(api) as mesh, pytest.raises(ServerError) as raised:
        mesh.get_network(NETWORK_ID)

    assert raised.value.body is None
    assert "Bad Gateway" in raised.value.message


def test_a_success_that_is_not_json_is_a_protocol_error() -> None:
    api = ScriptedApi(httpx.Response(200, text="<html>a login page</html>"))

    with mesh_for(api) as mesh, pytest.raises(ProtocolError):
        mesh.get_network(NETWORK_ID)


def test_the_api_key_never_shows_in_a_repr_or_an_exception() -> None:
    echoed = f"unknown key {API_KEY}"
    api = ScriptedApi(
        httpx.Response(
            401, json={"code": 401, "status": "Unauthorized", "message": echoed, "errors": {}}
        ),
        *[httpx.ConnectError(f"refused while sending {API_KEY}") for _ in range(4)],
    )

    with mesh_for(api) as mesh:
        with pytest.raises(Unauthorized) as unauthorized:
            mesh.list_networks()
        with pytest.raises(TransportError) as unreachable:
            mesh.list_networks()
        shown = [repr(mesh), str(mesh)]

    for exc in (unauthorized.value, unreachable.value):
        shown += [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "body", None))]
    assert all(API_KEY not in text for text in shown), shown
    assert "unknown key [api key]" in str(unauthorized.value)


def test_a_task_unchanged_since_a_revision_answers_not_modified() -> None:
    api = ScriptedApi(httpx.Response(304, headers={"ETag": '"7"'}))

    with mesh_for(api) as mesh:
        answer = mesh.get_task(NETWORK_ID, TASK_ID, if_none_match=7)

    assert answer == NotModified(revision=7, etag='"7"')
    assert api.requests[0].headers["If-None-Match"] == '"7"'


def test_a_long_poll_asks_the_api_to_wait_and_waits_longer_for_the_answer() -> None:
    api = ScriptedApi(summary("running", 8))

    with mesh_for(api, timeout=5.0) as mesh:
        answer = mesh.get_task(NETWORK_ID, TASK_ID, view="summary", after=7, wait=20)

    assert answer["revision"] == 8
    sent = api.requests[0]
    assert sent.url.params["view"] == "summary"
    assert sent.url.params["after"] == "7" and sent.url.params["wait"] == "20"
    assert sent.extensions["timeout"]["read"] >= 25


def test_a_wait_without_a_revision_to_wait_past_is_refused_before_sending() -> None:
    with mesh_for(ScriptedApi()) as mesh, pytest.raises(ValueError, match="wait"):
        mesh.get_task(NETWORK_ID, TASK_ID, wait=10)


def test_wait_for_long_polls_with_the_last_revision_until_the_task_ends() -> None:
    final = task("completed", 9, result={"answer": "Dear developer...", "score": 0.9})
    api = ScriptedApi(
        summary("running", 3),
        httpx.Response(304, headers={"ETag": '"3"'}),
        summary("reviewing", 6),
        summary("completed", 9),
        httpx.Response(200, json=final),
    )

    with mesh_for(api) as mesh:
        finished = mesh.wait_for(NETWORK_ID, TASK_ID, timeout=300)

    assert finished == final
    conditions = [r.headers.get("If-None-Match") for r in api.requests]
    assert conditions == [None, '"3"', '"3"', '"6"', None]
    assert [r.url.params.get("wait") for r in api.requests[1:4]] == ["30", "30", "30"]
    # One answer at the end, not one per step the task records on the way.
    assert [r.url.params.get("until") for r in api.requests[1:4]] == ["ended"] * 3


def test_submit_with_wait_returns_the_final_task() -> None:
    final = task("completed", 5, result={"answer": "Dear developer...", "score": 0.85})
    api = ScriptedApi(
        httpx.Response(202, json=task("queued", 1)),
        summary("running", 2),
        summary("completed", 5),
        httpx.Response(200, json=final),
    )

    with mesh_for(api) as mesh:
        finished = mesh.submit(NETWORK_ID, "Write the launch email", wait=True, timeout=60)

    assert finished["status"] == "completed"
    assert finished["result"] == {"answer": "Dear developer...", "score": 0.85}


def test_a_wait_that_runs_out_raises_a_timeout_error_and_leaves_the_task_running() -> None:
    api = ScriptedApi(httpx.Response(202, json=task()), summary("running", 2))

    with mesh_for(api) as mesh, pytest.raises(TimeoutError) as raised:
        mesh.submit(NETWORK_ID, "Write the launch email", wait=True, timeout=0)

    assert isinstance(raised.value, WaitTimeout)
    assert raised.value.status == "running"
    assert [r.method for r in api.requests] == ["POST", "GET"]


def test_a_cancel_whose_retry_answers_409_returns_the_task_it_cancelled() -> None:
    cancelled = task("cancelled", 4)
    api = ScriptedApi(
        httpx.ReadTimeout("the answer was lost"),
        error(409, "task has already ended"),
        httpx.Response(200, json=cancelled),
    )

    with mesh_for(api) as mesh:
        answer = mesh.cancel(NETWORK_ID, TASK_ID)

    assert answer == cancelled
    assert [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in api.requests] == [
        ("POST", "cancel"),
        ("POST", "cancel"),
        ("GET", TASK_ID),
    ]


def test_a_cancel_refused_on_its_first_attempt_raises_conflict() -> None:
    api = ScriptedApi(error(409, "task has already ended"))

    with mesh_for(api) as mesh, pytest.raises(Conflict):
        mesh.cancel(NETWORK_ID, TASK_ID)


def test_a_delete_whose_retry_answers_404_has_succeeded() -> None:
    api = ScriptedApi(httpx.RemoteProtocolError("reset"), error(404, "network not found"))

    with mesh_for(api) as mesh:
        assert mesh.delete_network(NETWORK_ID) is None

    assert [r.method for r in api.requests] == ["DELETE", "DELETE"]


def test_a_list_answers_its_items_with_the_pagination_header() -> None:
    agents = [{"id": "a1", "type": "coordinator"}, {"id": "a2", "type": "critic"}]
    pagination = {"total": 12, "total_pages": 6, "first_page": 1, "last_page": 6, "page": 2}
    pagination |= {"previous_page": 1, "next_page": 3}
    api = ScriptedApi(
        httpx.Response(200, json=agents, headers={"X-Pagination": json.dumps(pagination)})
    )

    with mesh_for(api) as mesh:
        page = mesh.list_agents(NETWORK_ID, page=2, page_size=2)

    assert page.items == agents and len(page) == 2
    assert (page.total, page.total_pages, page.page, page.next_page) == (12, 6, 2, 3)
    assert api.requests[0].url.params["page"] == "2"


def test_fields_the_client_does_not_know_are_kept() -> None:
    api = ScriptedApi(httpx.Response(200, json=task(new_field={"from": "a newer Mesh"})))

    with mesh_for(api) as mesh:
        answer = mesh.get_task(NETWORK_ID, TASK_ID)

    assert answer["new_field"] == {"from": "a newer Mesh"}  # type: ignore[typeddict-item]


def test_memory_filters_go_in_the_query_and_several_types_repeat() -> None:
    api = ScriptedApi(httpx.Response(200, json=[]))

    with mesh_for(api) as mesh:
        mesh.list_memory(NETWORK_ID, type=["fact", "decision"], min_confidence=0.5)

    params = api.requests[0].url.params
    assert params.get_list("type") == ["fact", "decision"]
    assert params["min_confidence"] == "0.5"


def test_ids_are_quoted_whole_into_the_path() -> None:
    api = ScriptedApi(error(404, "not found"))

    with mesh_for(api) as mesh, pytest.raises(NotFound):
        mesh.get_network("../keys")

    assert api.requests[0].url.raw_path == b"/api/mesh/networks/..%2Fkeys"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://mesh.test:8000",
        "mesh.test:8000",
        "http://mesh.test:8000/",
        "mesh.test:8000/api/mesh",
    ],
)
def test_a_base_url_may_be_written_the_ways_people_write_it(base_url: str) -> None:
    api = ScriptedApi(httpx.Response(200, json=[]))

    with Mesh(base_url, API_KEY, transport=api.transport) as mesh:
        mesh.providers()

    assert str(api.requests[0].url) == "http://mesh.test:8000/api/mesh/providers"
