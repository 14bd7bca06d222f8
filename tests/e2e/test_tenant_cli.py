"""`mesh tenant erase`, against a real `mesh serve` on the embedded default, and without one.

The erased tenant's key stops working, its rows leave the SQLite file (all but the audit
trail, which records the erasure), and its keys leave the embedded Redis; another tenant's
work is untouched. With no serve running, the command starts the data dir's Redis itself.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
import redis

from meshcli.embedded_redis import SETTINGS_FILE
from tests.e2e.server import MESH, PROVIDER_KEYS, ServeProcess, serve_process

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NO_DEV_KEY = {"MESH_DEV_API_KEY": "", "MESH_API_KEY_SECRET": "", "MESH_AGENT_WORKERS": "1"}


def _mesh(data_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    return subprocess.run(
        [str(MESH), *args],
        env={**clean, "MESH_DATA_DIR": str(data_dir)},
        cwd=REPO,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _key(data_dir: Path, tenant: str) -> str:
    made = _mesh(data_dir, "keys", "create", "--tenant", tenant, "--scopes", "read,write,admin")
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


def _rows_of(data_dir: Path, *needles: str) -> dict[str, int]:
    """Rows per table of the SQLite record that hold any of `needles`."""
    found: dict[str, int] = {}
    with sqlite3.connect(data_dir / "mesh.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                if any(n in json.dumps([str(v) for v in row]) for n in needles):
                    found[table] = found.get(table, 0) + 1
    return found


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tenant")


@pytest.fixture(scope="module")
def served(data_dir: Path) -> Iterator[ServeProcess]:
    with serve_process(data_dir, env=NO_DEV_KEY) as serve:
        serve.wait_ready()
        yield serve


def test_erase_removes_a_tenant_from_a_running_mesh_and_keeps_the_other(
    served: ServeProcess, data_dir: Path
) -> None:
    doomed, kept = f"acme-{uuid4().hex[:6]}", f"globex-{uuid4().hex[:6]}"
    canary = f"canary-{uuid4().hex}"
    keys = {tenant: _key(data_dir, tenant) for tenant in (doomed, kept)}
    networks = {}
    for tenant, key in keys.items():
        with httpx.Client(base_url=served.base, headers={"Authorization": f"Bearer {key}"}) as c:
            network = c.post("/api/mesh/networks", json={"name": f"{tenant} {canary}"}).json()
            item = {"type": "fact", "content": f"{tenant} {canary}"}
            assert c.post(f"/api/mesh/networks/{network['id']}/memory", json=item).is_success
            networks[tenant] = network["id"]
    socket = json.loads((data_dir / SETTINGS_FILE).read_text())["unixsocket"]
    live = redis.Redis(unix_socket_path=socket)
    assert list(live.scan_iter(match=f"mesh:{doomed}:*"))

    declined = _mesh(data_dir, "tenant", "erase", doomed, input="n\n")
    assert declined.returncode == 1 and "Aborted" in declined.stderr
    assert _rows_of(data_dir, doomed).get("networks") == 1

    erased = _mesh(data_dir, "tenant", "erase", doomed, "--yes", "--json")

    assert erased.returncode == 0, erased.stderr
    report = json.loads(erased.stdout)
    assert report["tenant"] == doomed
    assert report["rows"]["networks"] == 1 and report["rows"]["api_keys"] == 1
    assert report["redis_keys"] > 0
    started = time.monotonic()
    while (
        answer := httpx.get(
            f"{served.base}/api/mesh/networks", headers={"Authorization": f"Bearer {keys[doomed]}"}
        )
    ).status_code != 401:
        assert time.monotonic() - started < 5, answer.status_code
        time.sleep(0.2)
    left = _rows_of(data_dir, doomed, f"{doomed} {canary}")
    assert set(left) <= {"audit_events"}, left
    assert list(live.scan_iter(match=f"mesh:{doomed}:*")) == []
    with sqlite3.connect(data_dir / "mesh.db") as db:
        trail = db.execute(
            "SELECT route, status FROM audit_events WHERE tenant_id = ? ORDER BY id DESC",
            (doomed,),
        ).fetchall()
    assert trail[0] == ("mesh tenant erase", 202)
    mine = httpx.get(
        f"{served.base}/api/mesh/networks/{networks[kept]}/memory",
        headers={"Authorization": f"Bearer {keys[kept]}"},
    )
    assert mine.status_code == 200 and f"{kept} {canary}" in mine.text
    live.close()


def test_erase_without_a_running_mesh_starts_the_data_dirs_redis_itself(tmp_path: Path) -> None:
    tenant = f"initech-{uuid4().hex[:6]}"
    _key(tmp_path, tenant)

    erased = _mesh(tmp_path, "tenant", "erase", tenant, "--yes")

    assert erased.returncode == 0, erased.stderr
    assert f"tenant {tenant} erased: 1 api_keys" in erased.stdout
    assert set(_rows_of(tmp_path, tenant)) <= {"audit_events"}
    assert not (tmp_path / SETTINGS_FILE).exists()  # the Redis it started is stopped
    listed = _mesh(tmp_path, "keys", "list", "--tenant", tenant, "--json")
    assert json.loads(listed.stdout) == []
