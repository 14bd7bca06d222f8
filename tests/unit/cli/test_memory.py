"""`mesh memory list` (search), `mesh memory history` and `mesh memory promote`: what they
send and print, through the commands' own session, so the API's errors read as users see them."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from click.testing import CliRunner, Result

import meshclient
from meshcli import memory as memory_cli
from tests.client.fakes import NETWORK_ID, TASK_ID, ScriptedApi, error
from tests.client.memory_answers import (
    CRITIC,
    ITEM_ID,
    MEMORY_PATH,
    OTHER_ID,
    RATING,
    WHEN,
    history,
    item,
    scored,
)

Serve = Callable[..., ScriptedApi]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Serve:
    """Answer the commands' requests from a script: the real session talks to it."""
    real = meshclient.Mesh

    def serve(*answers: httpx.Response) -> ScriptedApi:
        api = ScriptedApi(*answers)

        def mesh(root: str, api_key: str, **options: object) -> meshclient.Mesh:
            return real(root, api_key, transport=api.transport, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(meshclient, "Mesh", mesh)
        return api

    return serve


def run(*args: str, network: bool = True) -> Result:
    where = ["--network", NETWORK_ID] if network else []
    options = [*where, "--url", "http://mesh.test", "--api-key", "k"]
    return CliRunner().invoke(memory_cli.memory, [*args, *options])


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_search_sends_its_filters_and_shows_the_score_of_each_item_best_first(
    serve: Serve,
) -> None:
    api = serve(
        httpx.Response(
            200,
            json=[
                scored(ITEM_ID, 0.871, 1.0),
                scored(OTHER_ID, 0.4, 0.2, content="Orbit launches in March", confidence=0.5),
            ],
        )
    )

    printed = ok(
        "list",
        "--q",
        "what do teachers pay",
        "--agent",
        "research",
        "--min-confidence",
        "0.5",
        "--task",
        TASK_ID,
    )

    request = api.requests[0]
    assert (request.method, request.url.path) == ("GET", MEMORY_PATH)
    assert dict(request.url.params) == {
        "q": "what do teachers pay",
        "agent": "research",
        "min_confidence": "0.5",
        "task_id": TASK_ID,
        "page_size": "20",
    }
    lines = [line.split() for line in printed.splitlines()]
    assert lines[0] == ["ID", "TYPE", "SCORE", "CONFIDENCE", "CREATED", "CONTENT"]
    assert [line[:4] for line in lines[1:]] == [
        [ITEM_ID, "fact", "0.87", "0.90"],
        [OTHER_ID, "fact", "0.40", "0.50"],
    ]
    assert "Orbit launches in March" in printed.splitlines()[2]


def test_an_agent_alone_ranks_too_and_shows_the_score(serve: Serve) -> None:
    api = serve(httpx.Response(200, json=[scored(ITEM_ID, 1.2, 0.0)]))

    printed = ok("list", "--agent", "critic")

    assert dict(api.requests[0].url.params) == {"agent": "critic", "page_size": "20"}
    assert printed.splitlines()[0].split()[2] == "SCORE"
    assert printed.splitlines()[1].split()[2] == "1.20"


def test_a_list_without_a_search_has_no_score_column_and_asks_for_no_ranking(
    serve: Serve,
) -> None:
    api = serve(httpx.Response(200, json=[item()]))

    printed = ok("list", "--type", "fact")

    assert dict(api.requests[0].url.params) == {"type": "fact", "page_size": "20"}
    assert printed.splitlines()[0].split() == ["ID", "TYPE", "CONFIDENCE", "CREATED", "CONTENT"]
    assert printed.splitlines()[1].split()[:3] == [ITEM_ID, "fact", "0.90"]


def test_a_search_prints_json_with_the_scores_on_request(serve: Serve) -> None:
    serve(httpx.Response(200, json=[scored(ITEM_ID, 0.87, 1.0)]))

    (found,) = json.loads(ok("list", "--q", "teachers", "--json"))

    assert (found["id"], found["score"], found["score_parts"]["relevance"]) == (ITEM_ID, 0.87, 1.0)


def test_a_search_that_finds_nothing_says_so(serve: Serve) -> None:
    serve(httpx.Response(200, json=[]))

    assert ok("list", "--q", "zebra") == "no memory items\n"


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_a_min_confidence_outside_0_to_1_is_refused_before_sending(
    serve: Serve, value: str
) -> None:
    api = serve()

    result = run("list", "--min-confidence", value)

    assert result.exit_code == 2
    assert "--min-confidence" in result.output
    assert api.requests == []


def test_a_search_the_api_refuses_prints_its_message(serve: Serve) -> None:
    serve(error(422, "Unprocessable Entity"))

    result = run("list", "--agent", "Not A Type")

    assert result.exit_code == 1
    assert "422: Unprocessable Entity" in result.output


def test_history_prints_the_confidence_and_each_change_oldest_first(serve: Serve) -> None:
    api = serve(httpx.Response(200, json=history(CRITIC, RATING)))

    printed = ok("history", ITEM_ID).splitlines()

    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", f"{MEMORY_PATH}/{ITEM_ID}/history")
    ]
    assert printed[0] == f"memory {ITEM_ID} confidence 0.58"
    assert printed[1].split() == ["AT", "SOURCE", "BEFORE", "AFTER", "TASK", "REASON"]
    assert printed[2].split()[:6] == ["2026-12-07", "10:00:01", "critic", "0.50", "0.60", TASK_ID]
    assert printed[2].endswith("the critic passed the answer that used it")
    assert printed[3].split()[:6] == ["2026-12-07", "10:00:02", "rating", "0.60", "0.58", "-"]
    assert printed[3].endswith("client rated task 2/5")
    assert len(printed) == 4


def test_history_of_an_item_that_learned_nothing_says_so(serve: Serve) -> None:
    serve(httpx.Response(200, json={"item_id": ITEM_ID, "confidence": 0.5, "changes": []}))

    assert ok("history", ITEM_ID).splitlines() == [
        f"memory {ITEM_ID} confidence 0.50",
        "no changes: its confidence is the one it was written with",
    ]


def test_history_prints_json_on_request(serve: Serve) -> None:
    serve(httpx.Response(200, json=history(CRITIC)))

    assert json.loads(ok("history", ITEM_ID, "--json")) == history(CRITIC)


def test_history_of_an_unknown_item_prints_the_apis_404(serve: Serve) -> None:
    serve(error(404, "memory item not found"))

    result = run("history", ITEM_ID)

    assert result.exit_code == 1
    assert "404: memory item not found" in result.output


def test_an_item_missing_from_the_default_network_asks_for_its_network(serve: Serve) -> None:
    networks = [{"id": NETWORK_ID, "name": "mesh-cli", "agents": [], "created_at": WHEN}]
    api = serve(httpx.Response(200, json=networks), error(404, "memory item not found"))

    result = run("promote", ITEM_ID, network=False)

    assert result.exit_code == 1
    assert f"Memory item {ITEM_ID} is not in the network mesh-cli" in result.output
    assert "--network ID" in result.output
    assert api.requests[1].url.path == f"{MEMORY_PATH}/{ITEM_ID}/promote"


def test_promote_posts_and_prints_when_the_item_was_promoted(serve: Serve) -> None:
    promoted = item(type="context", promoted_at="2026-12-07T10:05:00+00:00")
    api = serve(httpx.Response(200, json=promoted))

    printed = ok("promote", ITEM_ID)

    assert [(r.method, r.url.path) for r in api.requests] == [
        ("POST", f"{MEMORY_PATH}/{ITEM_ID}/promote")
    ]
    assert printed == f"memory {ITEM_ID} context promoted 2026-12-07 10:05:00\n"


def test_promote_prints_json_on_request(serve: Serve) -> None:
    promoted = item(promoted_at="2026-12-07T10:05:00+00:00")
    serve(httpx.Response(200, json=promoted))

    assert json.loads(ok("promote", ITEM_ID, "--json")) == promoted


def test_promoting_an_unknown_item_prints_the_apis_404(serve: Serve) -> None:
    serve(error(404, "memory item not found"))

    result = run("promote", ITEM_ID)

    assert result.exit_code == 1
    assert "404: memory item not found" in result.output
