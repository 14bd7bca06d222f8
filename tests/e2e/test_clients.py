"""Clients in control, over HTTP against `mesh serve` on real Postgres and a Redis of its own:
idempotent submits (across a Redis restart), cancel with a model that takes 300 ms, and a
thousand clients waiting at once while plain reads go on.

The models are a provider on loopback (tests/provider_server.py) that takes 300 ms per call
and notes when each request arrived, so the cancel test can show that none arrived after the
cancel was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.drills.harness import PrivateRedis
from tests.e2e.server import AUTH, DEV_KEY, mesh_serve, poll
from tests.provider_server import ProviderServer, provider_server

pytestmark = [pytest.mark.e2e, pytest.mark.clients]

MODEL = "openai/gpt-4o"
LATENCY = "hang:0.3"
WAITING_CLIENTS = 1000
TWO_WAVES = [
    {"key": "facts", "agent": "research", "description": "Find Orbit's facts"},
    {"key": "numbers", "agent": "analytics", "description": "Find Orbit's numbers"},
    {
        "key": "email",
        "agent": "content",
        "description": "Write the email",
        "depends_on": ["facts", "numbers"],
    },
]


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    with provider_server() as server:
        server.behave(MODEL.split("/", 1)[1], default=LATENCY)
        yield server


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("clients-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def base(
    provider: ProviderServer,
    private_redis: PrivateRedis,
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
) -> Iterator[str]:
    env = {
        "MESH_DATABASE_URL": TEST_DATABASE_URL,
        "MESH_REDIS_URL": private_redis.url,
        "MESH_AGENT_WORKERS": "1",
        "MESH_MODEL_CHAIN": json.dumps([MODEL]),
        "MESH_PROVIDER_API_BASES": json.dumps({"openai": provider.openai_base}),
        "MESH_ALLOW_OFFLINE_MODEL": "false",
        "MESH_METRICS_PORT": "0",
    }
    with mesh_serve(tmp_path_factory.mktemp("clients"), env=env) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30, headers=AUTH) as client:
        yield client


@pytest.fixture(scope="module")
def network(client: httpx.Client) -> str:
    created = client.post("/api/mesh/networks", json={"name": f"clients-{uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_concurrent_submits_with_one_key_make_one_task_even_across_a_redis_restart(
    base: str, client: httpx.Client, network: str, private_redis: PrivateRedis
) -> None:
    url = f"/api/mesh/networks/{network}/tasks"
    body = {"description": "Write the launch email", "auto_process": False}
    headers = {**AUTH, "Idempotency-Key": f"submit-{uuid4()}"}
    answers: list[httpx.Response] = []

    def submit() -> None:
        with httpx.Client(base_url=base, timeout=30) as own:
            answers.append(own.post(url, json=body, headers=headers))

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [a.status_code for a in answers] == [202] * 20, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    assert {a.headers["Location"] for a in answers} == {f"{url}/{ids.pop()}"}
    first = answers[0].json()["id"]
    different = client.post(url, json={**body, "description": "Another"}, headers=headers)
    assert different.status_code == 422
    assert "Idempotency-Key" in different.json()["errors"]["headers"]

    private_redis.stop()  # everything Redis held is gone: the keys live in the record
    private_redis.start()
    retried = _until_accepted(client, url, body, headers)

    assert retried.status_code == 202
    assert retried.json()["id"] == first
    listed = client.get(url, params={"page_size": 100}).json()
    assert [t["id"] for t in listed if t["description"] == body["description"]] == [first]


def _until_accepted(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST until the API answers something other than 503 (it is reconnecting to Redis)."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post(url, json=body, headers=headers)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_a_cancel_mid_wave_ends_the_task_and_no_model_call_starts_after_it(
    client: httpx.Client, network: str, provider: ProviderServer
) -> None:
    url = f"/api/mesh/networks/{network}/tasks"
    task = client.post(url, json={"description": "Write the launch email", "plan": TWO_WAVES})
    assert task.status_code == 202, task.text
    location = task.headers["Location"]
    _wait_for_event(client, f"{location}/events", "step.started")
    time.sleep(0.1)  # mid-wave: the first wave's model calls are in flight

    sent = time.monotonic()
    cancelled = client.post(f"{location}/cancel")
    acknowledged = time.monotonic()

    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert acknowledged - sent < 1
    time.sleep(1.5)  # the in-flight calls answer; the next wave would have begun by now
    late = [at for at, _model in provider.arrivals if at > acknowledged]
    final = client.get(location).json()
    after = [round(at - acknowledged, 3) for at in late]
    steps = [(h["kind"], h["at"], h["detail"].get("subtask")) for h in final["history"]]
    assert late == [], f"requests arrived {after} s after the cancel was acknowledged: {steps}"
    assert final["status"] == "cancelled"
    assert final["revision"] == cancelled.json()["revision"]  # nothing after the end
    assert final["result"]["partial"] is True
    assert not any(s["key"] == "email" and s["step"] for s in final["subtasks"])
    assert client.post(f"{location}/cancel").status_code == 409


def _wait_for_event(client: httpx.Client, url: str, wanted: str) -> dict[str, Any]:
    with client.stream("GET", url, timeout=30) as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == wanted:
                return json.loads(line.removeprefix("data: "))
    raise AssertionError(f"no {wanted} event")


def test_a_thousand_waiting_clients_stay_open_while_plain_reads_are_answered(
    base: str, client: httpx.Client, network: str
) -> None:
    held = client.post(
        f"/api/mesh/networks/{network}/tasks",
        json={"description": "Held for the waiting clients", "auto_process": False},
    )
    location = held.headers["Location"]
    revision = held.json()["revision"]

    waited, reads = asyncio.run(_wait_and_read(base, location, revision))

    assert waited == {"stream": WAITING_CLIENTS // 2, "long poll": WAITING_CLIENTS // 2}
    assert [status for status, _ in reads] == [200] * len(reads)
    latencies = sorted(seconds for _, seconds in reads)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\n{WAITING_CLIENTS} waiting: plain GET median {statistics.median(latencies) * 1000:.1f}"
        f" ms, p99 {p99 * 1000:.1f} ms over {len(reads)} reads"
    )
    # And the waiters were all answered when the task changed: the long polls with it, the
    # streams with its events (checked inside _wait_and_read).


async def _wait_and_read(
    base: str, location: str, revision: int
) -> tuple[dict[str, int], list[tuple[int, float]]]:
    host, port = base.removeprefix("http://").split(":")
    auth = f"Authorization: Bearer {DEV_KEY}\r\n"
    streams = [
        f"GET {location}/events HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n"
        for _ in range(WAITING_CLIENTS // 2)
    ]
    polls = [
        f"GET {location}?wait=60&after={revision}&view=summary HTTP/1.1\r\nHost: {host}\r\n"
        f"{auth}\r\n"
        for _ in range(WAITING_CLIENTS // 2)
    ]
    opened: list[tuple[str, asyncio.StreamReader, asyncio.StreamWriter]] = []
    for kind, requests in (("stream", streams), ("long poll", polls)):
        for request in requests:
            reader, writer = await asyncio.open_connection(host, int(port), limit=2**20)
            writer.write(request.encode())
            opened.append((kind, reader, writer))
        await asyncio.sleep(0)
    # Every stream has sent its first event; no long poll has answered (nothing changed).
    for kind, reader, _ in opened:
        if kind == "stream":
            head = await asyncio.wait_for(reader.readuntil(b"event: task.status"), 30)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
    reads: list[tuple[int, float]] = []
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=5) as plain:
        for _ in range(200):
            started = time.monotonic()
            response = await plain.get(location)
            reads.append((response.status_code, time.monotonic() - started))
        assert all(not reader.at_eof() for _, reader, _ in opened)
        changed = await plain.post(f"{location}/cancel")
        assert changed.status_code == 202
    waited = {"stream": 0, "long poll": 0}
    for kind, reader, writer in opened:
        wanted = b"event: task.cancelled" if kind == "stream" else b'"status":"cancelled"'
        answer = await asyncio.wait_for(reader.readuntil(wanted), 30)
        # A stream's head came with its first event, read above; a long poll's comes now.
        assert kind == "stream" or answer.startswith(b"HTTP/1.1 200"), answer[:200]
        waited[kind] += 1
        writer.close()
    return waited, reads


def test_a_stream_of_a_finished_task_sends_its_whole_log_and_resumes_exactly(
    client: httpx.Client, network: str
) -> None:
    task = client.post(
        f"/api/mesh/networks/{network}/tasks",
        json={"description": "Write it", "plan": TWO_WAVES[:1]},
    )
    location = task.headers["Location"]
    final = poll(client, location, timeout=60)

    whole = _ids(client, f"{location}/events")
    resumed = _ids(client, f"{location}/events", last=5)

    assert whole == list(range(1, final["revision"] + 1))
    assert resumed == whole[5:]


def _ids(client: httpx.Client, url: str, last: int | None = None) -> list[int]:
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    with client.stream("GET", url, headers=headers, timeout=30) as stream:
        return [int(line[4:]) for line in stream.iter_lines() if line.startswith("id: ")]


def test_a_stream_open_across_a_redis_restart_misses_no_event(
    base: str, client: httpx.Client, network: str, private_redis: PrivateRedis
) -> None:
    held = client.post(
        f"/api/mesh/networks/{network}/tasks",
        json={"description": "Held across a Redis restart", "auto_process": False},
    ).headers["Location"]
    received: list[int] = []
    kinds: list[str] = []
    opened = threading.Event()

    def follow() -> None:
        with (
            httpx.Client(base_url=base, headers=AUTH, timeout=60) as own,
            own.stream("GET", f"{held}/events") as stream,
        ):
            for line in stream.iter_lines():
                if line.startswith("id: "):
                    received.append(int(line[4:]))
                    opened.set()
                elif line.startswith("event: "):
                    kinds.append(line.removeprefix("event: "))

    reader = threading.Thread(target=follow)
    reader.start()
    assert opened.wait(30)
    private_redis.stop()  # the live notifications go; the log is the record's
    private_redis.start()

    assert _until_accepted(client, f"{held}/process", {}, AUTH).status_code == 202
    assert client.post(f"{held}/cancel").status_code == 202
    reader.join(timeout=60)

    assert not reader.is_alive(), "the stream did not end after the task's final event"
    # queued, released, (planning, if the coordinator got to it first), cancelled
    assert received == list(range(1, len(received) + 1))
    assert kinds[:2] == ["task.status", "task.released"]
    assert kinds[-1] == "task.cancelled"
