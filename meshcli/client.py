"""A small client of the REST API for `mesh submit` (standard library only, so it starts fast)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

CLI_NETWORK = "mesh-cli"
FINAL = {"completed", "failed", "cancelled", "timed_out"}


class ApiError(Exception):
    """The API answered with an error (its status), or could not be reached (status None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def key_hint(status: int | None, *, has_key: bool) -> str | None:
    """What to do when the API refused the key (401) or its scopes (403)."""
    if status == 401 and not has_key:
        return (
            "The API needs a key: pass one with --api-key KEY or MESH_API_KEY=KEY "
            "(mesh serve prints one at first start; `mesh keys create` makes more)."
        )
    if status == 401:
        return (
            "The API refused that key: check --api-key / MESH_API_KEY, or make a new one "
            "with `mesh keys create --tenant TENANT --scopes read,write`."
        )
    if status == 403:
        return (
            "That key lacks a scope this needs: pass a key with the read and write scopes "
            "(--api-key or MESH_API_KEY)."
        )
    return None


def api_url(text: str) -> str:
    """The API's base URL from what a user types: `localhost:8600` means http://localhost:8600."""
    text = text.strip()
    if not urlsplit(text).netloc:
        # urlsplit reads `localhost:8600` as scheme `localhost`: a URL needs `//` after its scheme.
        text = f"http://{text}"
    return text.rstrip("/")


class MeshClient:
    def __init__(
        self, base_url: str, *, api_key: str | None = None, ca_file: str | None = None
    ) -> None:
        self._root = api_url(base_url)
        self._base = self._root + "/api/mesh"
        # https:// is verified against ca_file, else the system's CAs, with the hostname
        # checked: a key must never go to a server that only claims to be Mesh.
        self._tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key.strip()}"

    def request(self, method: str, path: str, body: dict | None = None) -> Any:
        return self.exchange(method, path, body)[0]

    def exchange(
        self, method: str, path: str, body: dict | None = None
    ) -> tuple[Any, dict[str, str]]:
        """The decoded answer and its headers."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self._base + path,
            data=data,
            method=method,
            headers=self._headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self._tls) as response:
                raw, headers = response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{exc.code}: {_message(exc.read())}", exc.code) from exc
        except urllib.error.URLError as exc:
            hint = ""
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                hint = (
                    " (if the server's CA is a private one, pass it with --ca-file or MESH_CA_FILE)"
                )
            raise ApiError(f"cannot reach {self._base}: {exc.reason}{hint}") from exc
        return (json.loads(raw) if raw else None), headers

    def default_network(self) -> str:
        """The id of the network named mesh-cli, created with the default team if missing."""
        page = 1
        while True:
            networks = self.request("GET", f"/networks?page={page}&page_size=100")
            for network in networks:
                if network["name"] == CLI_NETWORK:
                    return network["id"]
            if len(networks) < 100:
                break
            page += 1
        return self.request("POST", "/networks", {"name": CLI_NETWORK})["id"]

    def submit(self, network_id: str, description: str, priority: str) -> tuple[dict, str]:
        """The accepted task, and the URL to poll it at (the answer's Location)."""
        body = {"description": description, "priority": priority}
        task, headers = self.exchange("POST", f"/networks/{network_id}/tasks", body)
        location = headers.get("Location") or f"/api/mesh/networks/{network_id}/tasks/{task['id']}"
        return task, urljoin(self._root + "/", location)

    def task(self, network_id: str, task_id: str) -> dict:
        return self.request("GET", f"/networks/{network_id}/tasks/{task_id}")


def follow(
    client: MeshClient,
    network_id: str,
    task_id: str,
    *,
    timeout: float,
    echo: Callable[[str], None],
) -> dict:
    """Poll a task until it ends, echoing each history line as it appears."""
    deadline, shown = time.monotonic() + timeout, 0
    while True:
        task = client.task(network_id, task_id)
        for entry in task["history"][shown:]:
            echo(_line(entry))
        shown = len(task["history"])
        if task["status"] in FINAL:
            return task
        if time.monotonic() > deadline:
            raise ApiError(f"task {task_id} still {task['status']} after {timeout:.0f} s")
        time.sleep(0.2)


def verdict(task: dict, task_url: str) -> str:
    """What a finished task came to: the answer (or error), the critic's score and feedback,
    and where to read the whole record."""
    result = task.get("result") or {}
    lines = [result.get("answer") or task.get("error") or f"(no answer: {task['status']})", ""]
    if result.get("score") is not None:
        lines.append(f"score     {result['score']:.2f}")
    if result.get("feedback"):
        lines.append(f"feedback  {result['feedback']}")
    lines.append(f"task      {task_url}")
    return "\n".join(lines)


def _message(raw: bytes) -> str:
    """The error's message when the body is Mesh's JSON error, else the body as it came."""
    text = raw.decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return text
    details = body.get("errors")
    return body["message"] + (f" {json.dumps(details)}" if details else "")


def _line(entry: dict) -> str:
    at = entry["at"][11:23]
    if entry["kind"] == "step":
        d = entry["detail"]
        return (
            f"{at}  step   {d['subtask']:<16} {entry['agent']:<16} {entry['queue']:<24} "
            f"{d['status']} ({d['latency_ms']:.0f} ms)"
        )
    reason = entry["detail"].get("reason")
    return f"{at}  status {entry['status']}" + (f" ({reason})" if reason else "")
