"""docs/console-task.png: a task's page at 1280 px, taken from a real `mesh serve`.

    .venv/bin/python -m tests.browser.screenshot [docs/console-task.png]

It runs on the embedded default (no Postgres or Redis needed) with the tests' development key.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.e2e.server import AUTH, DEV_KEY, mesh_serve

DESCRIPTION = "Write the launch email for Orbit, our budgeting app, for trial users"


def take(target: Path) -> None:
    """Run one task to its end and save its page, the graph and a step open."""
    with tempfile.TemporaryDirectory() as data, mesh_serve(
        Path(data),
        output=Path(data) / "serve.log",
        offline_latency_ms="200",
        agent_workers="1",
        metrics_port="0",
    ) as base:
        with httpx.Client(base_url=f"{base}/api/mesh", headers=AUTH, timeout=10) as api:
            network = api.post("/networks", json={"name": "launch team"}).json()["id"]
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{base}/")
            page.get_by_label("API key").fill(DEV_KEY)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Networks")).to_be_visible()
            page.goto(f"{base}/console#/networks/{network}")
            form = page.locator("#submit-task")
            form.get_by_label("Description", exact=True).fill(DESCRIPTION)
            form.get_by_label("context key").fill("segment")
            form.get_by_label("context value").fill("trial users")
            form.get_by_role("button", name="Submit task").click()
            expect(page.locator(".task-page")).to_have_attribute(
                "data-task-status", "completed", timeout=120_000
            )
            page.locator('[data-node="1:content"]').click()
            expect(page.locator("#step pre.output")).to_be_visible()
            page.screenshot(path=target, full_page=True)
            browser.close()


if __name__ == "__main__":
    take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console-task.png"))
