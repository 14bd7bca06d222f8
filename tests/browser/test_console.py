"""The console at /console, in a real browser against a real `mesh serve`: sign in, networks,
a task's graph drawn live from its event stream, a step, cancel, and model output that tries
to be HTML."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.conftest import Dialogs, create_network, sign_in

pytestmark = pytest.mark.browser

FINAL = {"completed", "failed", "cancelled", "stopped", "skipped", "given"}
ATTACK = "<img src=x onerror=alert(1)>"


def _statuses(page: Page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "svg.graph [data-node]",
        "nodes => Object.fromEntries(nodes.map(n => [n.dataset.node, n.dataset.status]))",
    )


def _submit(page: Page, description: str) -> None:
    form = page.locator("#submit-task")
    form.get_by_label("Description", exact=True).fill(description)
    form.get_by_role("button", name="Submit task").click()
    expect(page.locator(".task-page")).to_be_visible()


def test_a_wrong_key_shows_a_sign_in_error(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("API key").fill("mesh_0123456789abcdef_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("The API refused this key")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0  # a refused key is not kept


def test_a_task_runs_live_on_its_page_from_submit_to_answer(
    page: Page, base: str, key: str
) -> None:
    sign_in(page, base, key)
    page.get_by_label("Name", exact=True).fill("launch team")
    page.get_by_role("button", name="Create network").click()
    expect(page.get_by_role("heading", name="launch team")).to_be_visible()

    _submit(page, "Write the launch email for Orbit")
    task_page = page.locator(".task-page")
    # Set once on arrival: a reload would lose it, so its survival shows the page was only
    # ever updated in place, by the event stream.
    page.evaluate("() => { window.consoleMarker = 'landed'; }")
    arrived_with = int(task_page.get_attribute("data-events") or "0")

    expect(task_page).to_have_attribute("data-stream", "live", timeout=15_000)
    expect(task_page).to_have_attribute("data-task-status", "completed", timeout=90_000)
    page.wait_for_timeout(300)  # the GET the final event asks for
    statuses = _statuses(page)

    assert page.evaluate("() => window.consoleMarker") == "landed"
    assert int(task_page.get_attribute("data-events") or "0") > arrived_with
    assert set(statuses.values()) <= FINAL and set(statuses.values()) == {"completed"}
    for node in ("1:@plan", "1:research", "1:content", "1:@synthesis", "1:@review"):
        assert node in statuses
    expect(page.locator("#answer")).to_contain_text("Write the launch email for Orbit")
    expect(page.locator("#timeline li").last).to_contain_text("completed")

    research = page.locator('[data-node="1:research"]')
    research.focus()
    page.keyboard.press("Enter")  # a node is a button, from the keyboard too
    step = page.locator("#step")
    expect(step).to_contain_text("Subtask research · iteration 1")
    for shown in ("agent.research", "mesh-offline/offline-v1", "Worker", "Tokens", "Latency"):
        expect(step).to_contain_text(shown)
    expect(step.locator("pre.output")).to_contain_text("Draft by the research")


def test_a_slow_task_is_cancelled_from_its_page(
    page: Page, base: str, key: str, api: httpx.Client
) -> None:
    network_id = create_network(api, "cancel team")
    sign_in(page, base, key)
    page.goto(f"{base}/console#/networks/{network_id}")
    # A plan of six steps one after another: seconds of work at 300 ms a model call.
    form = page.locator("#submit-task")
    agents = ["research", "content", "design", "analytics", "personalization", "content"]
    for index, agent in enumerate(agents):
        form.get_by_role("button", name="Add a subtask").click()
        row = form.locator(".plan-row").nth(index)
        row.get_by_label("Subtask key").fill(f"s{index}")
        row.get_by_label("Subtask agent").select_option(agent)
        row.get_by_label("Subtask description").fill(f"step {index}")
        if index:
            row.get_by_label("Depends on (keys, comma-separated)").fill(f"s{index - 1}")
    _submit(page, "A long chain to cancel")
    expect(page.locator('[data-node="1:s0"]')).to_have_attribute(
        "data-status", "running", timeout=15_000
    )

    page.get_by_role("button", name="Cancel task").click()

    task_page = page.locator(".task-page")
    expect(task_page).to_have_attribute("data-task-status", "cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Cancel task")).to_be_disabled()
    statuses = _statuses(page)
    assert set(statuses.values()) <= FINAL
    assert statuses["1:s5"] == "skipped"


def test_model_output_that_looks_like_html_is_shown_as_text(
    page: Page, base: str, key: str, api: httpx.Client, dialogs: Dialogs
) -> None:
    network_id = create_network(api, "xss team")
    sign_in(page, base, key)
    page.goto(f"{base}/console#/networks/{network_id}")
    # The offline model quotes the task in every draft and in the answer, so the answer holds
    # the markup whole, and the title, steps, history and memory do too.
    _submit(page, f"Say {ATTACK} and **mean** it")
    expect(page.locator(".task-page")).to_have_attribute(
        "data-task-status", "completed", timeout=90_000
    )
    answer = page.locator("#answer")
    expect(answer).to_contain_text(ATTACK)
    page.locator('[data-node="1:content"]').click()
    expect(page.locator("#step pre.output")).to_contain_text(ATTACK)
    page.goto(f"{base}/console#/networks/{network_id}")
    expect(page.locator("td .content").first).to_contain_text(ATTACK)

    assert page.locator("img").count() == 0
    page.go_back()
    expect(answer).to_contain_text(ATTACK)
    assert answer.locator("strong").first.inner_text() == "mean"  # Markdown still renders
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_every_request_is_to_the_public_api_with_the_bearer_header(
    page: Page, base: str, key: str, api: httpx.Client
) -> None:
    network_id = create_network(api, "requests team")
    submitted = api.post(f"/networks/{network_id}/tasks", json={"description": "Count requests"})
    assert submitted.status_code == 202, submitted.text
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))

    sign_in(page, base, key)
    page.get_by_role("link", name="requests team").click()
    expect(page.get_by_role("heading", name="requests team")).to_be_visible()
    page.get_by_role("link", name="Count requests").click()
    expect(page.locator(".task-page")).to_have_attribute(
        "data-task-status", "completed", timeout=90_000
    )
    page.get_by_role("link", name="Providers").click()
    expect(page.get_by_role("cell", name="mesh-offline/offline-v1")).to_be_visible()

    api_calls = []
    for request in requests:
        url = urlsplit(request.url)
        assert url.netloc == urlsplit(base).netloc, request.url
        assert key not in request.url
        if url.path == "/" or url.path.startswith("/console"):  # the page and its files
            assert request.method == "GET"
            continue
        assert url.path.startswith("/api/mesh/"), request.url
        assert request.all_headers().get("authorization") == f"Bearer {key}", request.url
        api_calls.append(url.path)
    assert any(path.endswith("/events") for path in api_calls) or any(
        path.endswith(submitted.json()["id"]) for path in api_calls
    )
    assert "/api/mesh/providers" in api_calls


def test_a_dropped_event_stream_resumes_after_the_last_event(
    page: Page, base: str, key: str, api: httpx.Client
) -> None:
    network_id = create_network(api, "resume team")
    sign_in(page, base, key)
    streams: list[Request] = []
    dropped: list[str] = []

    def drop_the_first(route: Route, request: Request) -> None:
        streams.append(request)
        if not dropped:
            dropped.append(request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/events", drop_the_first)
    page.goto(f"{base}/console#/networks/{network_id}")
    _submit(page, "Resume the stream")

    task_page = page.locator(".task-page")
    expect(task_page).to_have_attribute("data-task-status", "completed", timeout=90_000)
    assert len(streams) >= 2
    first, again = streams[0].all_headers(), streams[1].all_headers()
    assert "last-event-id" in again
    assert int(again["last-event-id"]) >= int(first.get("last-event-id", "0"))
