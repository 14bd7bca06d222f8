"""The console in Debian's Chromium, driven by Playwright, against one real `mesh serve`.

Playwright's own browser download cannot reach the internet here, so it launches the system's
Chromium (`apt-get install chromium`). The fleet runs on the test Postgres and a Redis
database of its own, with the offline model slowed down so that a task lasts long enough to be
watched and cancelled.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Dialog, Page, Playwright, expect, sync_playwright

from meshcli.keys import key_service
from meshcore.domain.keys import Scope
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET
from tests.e2e.server import mesh_serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# A Redis database of this suite's own: the fleet consumes every queue on it.
REDIS_URL = "redis://127.0.0.1:6379/14"
# Each model call takes this long: a task runs for seconds, long enough to watch and cancel.
LATENCY_MS = "300"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def base(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of one `mesh serve` for the whole suite."""
    flush = redis.Redis.from_url(REDIS_URL)
    flush.flushdb()
    data_dir = tmp_path_factory.mktemp("console-serve")
    env = {
        "MESH_DATABASE_URL": database_url,
        "MESH_REDIS_URL": REDIS_URL,
        "MESH_AGENT_WORKERS": "1",
        "MESH_METRICS_PORT": "0",
        "MESH_OFFLINE_LATENCY_MS": LATENCY_MS,
    }
    with mesh_serve(data_dir, env=env, output=data_dir / "serve.log") as url:
        yield url
    flush.flushdb()
    flush.close()


@pytest.fixture(scope="session")
def key(database_url: str) -> str:
    """A real key of a tenant of the suite's own, with read and write scopes (no admin: the
    console needs none)."""
    settings = Settings(
        database_url=database_url, redis_url=REDIS_URL, api_key_secret=API_KEY_SECRET
    )
    with key_service(settings) as service:
        _, secret = service.create(
            tenant_id=f"console-{secrets.token_hex(4)}", scopes=[Scope.READ, Scope.WRITE]
        )
    return secret


@pytest.fixture(scope="session")
def api(base: str, key: str) -> Iterator[httpx.Client]:
    """The API as the tests' own client, with the tenant's key: to set up what a test needs."""
    with httpx.Client(
        base_url=f"{base}/api/mesh", timeout=10, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        yield client


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


class Dialogs(list[str]):
    """The messages of every dialog (alert, confirm...) the page opened."""


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def page(browser: Browser, dialogs: Dialogs, tmp_path: Path) -> Iterator[Page]:
    """A fresh tab at 1280 px; its screenshot is saved in the test's output directory."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", dismiss)
    yield tab
    tab.screenshot(path=tmp_path / "screenshot.png", full_page=True)
    context.close()


def sign_in(page: Page, base: str, key: str) -> None:
    """Open the console at the root URL and sign in, as a person does."""
    page.goto(f"{base}/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Networks")).to_be_visible()


def create_network(api: httpx.Client, name: str) -> str:
    created = api.post("/networks", json={"name": name})
    assert created.status_code == 201, created.text
    return created.json()["id"]
