"""meshclient's memory calls against a real `mesh serve` (embedded): a search that ranks the
matching item first with its score, an item's confidence history, and a promoted context
item that outlives its task while its unpromoted sibling goes with it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from meshclient import Mesh
from tests.e2e.server import DEV_KEY, mesh_serve

pytestmark = [pytest.mark.e2e, pytest.mark.clients]

PRICE = "Orbit's price is $9 a month for teachers"
# The sweep that deletes an ended task's context runs this often: at the default 15 s the
# test would spend most of its time waiting for it.
SWEEP_SECONDS = "1"
SWEEP_WAIT = 60


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    data = tmp_path_factory.mktemp("serve")
    with (
        mesh_serve(data, sweep_interval_seconds=SWEEP_SECONDS, output=data / "serve.log") as url,
        Mesh(url, DEV_KEY) as client,
    ):
        yield client


def test_search_history_and_promotion_work_end_to_end(mesh: Mesh) -> None:
    network_id = mesh.create_network("memory e2e")["id"]
    price = mesh.add_memory(network_id, "fact", PRICE, confidence=0.9)
    launch = mesh.add_memory(network_id, "fact", "Orbit launches in March", confidence=0.9)
    mesh.add_memory(network_id, "feedback", "The subject line reads too long")
    # The same fact, its case and punctuation aside, merges into the first: the answer is
    # that item, and its history shows the merge.
    restated = mesh.add_memory(network_id, "fact", "orbit's price is $9 a month for TEACHERS.")

    found = mesh.list_memory(network_id, q="what do teachers pay for Orbit")

    assert restated["id"] == price["id"]
    assert [m["id"] for m in found] == [price["id"], launch["id"]]
    best = found.items[0]
    assert best["score"] > found.items[1]["score"] > 0
    assert best["score_parts"]["relevance"] == 1.0
    assert best["score_parts"]["confidence"] == restated["confidence"]
    assert "score" not in mesh.list_memory(network_id).items[0]

    history = mesh.memory_history(network_id, price["id"])

    assert history["item_id"] == price["id"]
    assert history["confidence"] == restated["confidence"] > 0.9
    assert [(c["source"], c["reason"], c["before"]) for c in history["changes"]] == [
        ("merge", "restated by a client", 0.9)
    ]
    assert history["changes"][0]["after"] == restated["confidence"]

    task = mesh.submit(network_id, "Draft the launch email", auto_process=False)
    of_task = {"task_id": task["id"]}
    kept = mesh.add_memory(
        network_id, "context", "Segment Y prefers short subjects", metadata=of_task
    )
    dropped = mesh.add_memory(
        network_id, "context", "Segment Y opens mail on Tuesdays", metadata=of_task
    )

    promoted = mesh.promote_memory(network_id, kept["id"])
    again = mesh.promote_memory(network_id, kept["id"])

    assert kept["promoted_at"] is None
    assert (promoted["id"], promoted["content"]) == (kept["id"], kept["content"])
    assert promoted["promoted_at"] is not None and promoted["expires_at"] is None
    assert again["promoted_at"] == promoted["promoted_at"]

    mesh.cancel(network_id, task["id"])
    deadline = time.monotonic() + SWEEP_WAIT
    left = [m["id"] for m in mesh.list_memory(network_id, task_id=task["id"])]
    while dropped["id"] in left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = [m["id"] for m in mesh.list_memory(network_id, task_id=task["id"])]

    assert left == [kept["id"]], f"after the task ended, its context was {left}"
