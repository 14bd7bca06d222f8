"""`mesh keys` and the first-start key, against a real `mesh serve` on the embedded default.

The serve here runs as a newcomer's does: no development key and no MESH_API_KEY_SECRET, so
the keys are hashed under the secret serve makes in the data dir, and the `mesh keys`
commands find the same file and the same secret from the same MESH_DATA_DIR.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meshcli.keys import key_service
from meshcore.domain.errors import Unauthenticated
from meshcore.domain.keys import parse_key
from meshcore.settings import Settings
from tests.conftest import API_KEY_SECRET, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.e2e.server import (
    MESH,
    PRINTED_KEY,
    PROVIDER_KEYS,
    ServeProcess,
    printed_keys,
    serve_process,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# A newcomer's serve: no development key, and the key secret made in the data dir.
NO_DEV_KEY = {"MESH_DEV_API_KEY": "", "MESH_API_KEY_SECRET": "", "MESH_AGENT_WORKERS": "1"}


def _mesh(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`mesh ...` from a shell with none of Mesh's settings but `env`'s."""
    clean = {
        k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.startswith("MESH_")
    }
    return subprocess.run(
        [str(MESH), *args],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return _mesh("keys", *args, MESH_DATA_DIR=str(data_dir))


def _get(base: str, key: str | None, path: str = "/api/mesh/networks") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(base + path, headers=headers, timeout=10)


def _wait_for_banner(serve: ServeProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while "Stop with Ctrl-C" not in serve.output:
        assert time.monotonic() < deadline and serve.process.poll() is None, serve.output
        time.sleep(0.2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def served(data_dir: Path) -> Iterator[ServeProcess]:
    with serve_process(data_dir, env=NO_DEV_KEY) as serve:
        serve.wait_ready()
        yield serve


@pytest.fixture(scope="module")
def first_key(served: ServeProcess) -> str:
    (key,) = printed_keys(served.output)
    return key


def test_the_first_start_prints_one_key_once_and_it_works(
    served: ServeProcess, first_key: str, data_dir: Path
) -> None:
    lines = served.output.splitlines()
    (curl,) = [line for line in lines if "curl" in line]

    assert [line for line in lines if "API key:" in line] == [f"  API key:   {first_key}"]
    assert f'-H "Authorization: Bearer {first_key}"' in curl
    assert _get(served.base, first_key).status_code == 200
    refused = _get(served.base, None)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Only its hash is kept: the secret is nowhere in the record's files.
    secret = parse_key(first_key)[1].encode()
    for stored in data_dir.glob("mesh.db*"):
        assert secret not in stored.read_bytes(), stored.name
    assert (data_dir / "api-key-secret").stat().st_mode & 0o777 == 0o600


def test_a_created_key_works_at_once_and_list_never_shows_a_secret(
    served: ServeProcess, first_key: str, data_dir: Path
) -> None:
    name = f"ci-{secrets.token_hex(3)}"
    created = _keys(
        data_dir, "create", "--tenant", "default", "--scopes", "read,write", "--name", name
    )

    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[-1]
    assert PRINTED_KEY.fullmatch(key)
    assert _get(served.base, key).status_code == 200
    made = httpx.post(
        f"{served.base}/api/mesh/networks",
        json={"name": name},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert made.status_code == 201, made.text

    table, listed = (
        _keys(data_dir, "list"),
        _keys(data_dir, "list", "--tenant", "default", "--json"),
    )
    assert table.returncode == 0 and listed.returncode == 0, table.stderr + listed.stderr
    key_id = parse_key(key)[0]
    (row,) = [line for line in table.stdout.splitlines() if line.startswith(key_id)]
    assert row.split()[:4] == [key_id, "default", name, "read,write"]
    mine = [k for k in json.loads(listed.stdout) if k["id"] == key_id]
    assert mine == [
        {
            "id": key_id,
            "tenant": "default",
            "name": name,
            "scopes": ["read", "write"],
            "created_at": mine[0]["created_at"],
            "revoked_at": None,
        }
    ]
    for shown in (table, listed):
        for secret in (key, first_key):
            assert parse_key(secret)[1] not in shown.stdout + shown.stderr


def test_a_revoked_key_is_refused_within_5_seconds(served: ServeProcess, data_dir: Path) -> None:
    created = _keys(data_dir, "create", "--tenant", "default", "--scopes", "read", "--json")
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert set(made) == {"id", "key", "tenant", "scopes"}
    assert (made["tenant"], made["scopes"]) == ("default", ["read"])
    assert made["key"].startswith(f"mesh_{made['id']}_")
    assert _get(served.base, made["key"]).status_code == 200  # now in the API's cache

    revoked = _keys(data_dir, "revoke", made["id"])
    started = time.monotonic()

    assert revoked.returncode == 0, revoked.stderr
    assert f"key {made['id']} of tenant default revoked" in revoked.stdout
    while (answer := _get(served.base, made["key"])).status_code != 401:
        assert time.monotonic() - started < 5, answer.status_code
        time.sleep(0.2)
    (row,) = [
        k for k in json.loads(_keys(data_dir, "list", "--json").stdout) if k["id"] == made["id"]
    ]
    assert row["revoked_at"] is not None


def test_bad_scopes_or_ids_are_refused_and_store_nothing(data_dir: Path) -> None:
    before = json.loads(_keys(data_dir, "list", "--json").stdout)

    scopes = _keys(data_dir, "create", "--tenant", "default", "--scopes", "read,owner")
    unknown = _keys(data_dir, "revoke", secrets.token_hex(8))
    malformed = _keys(data_dir, "revoke", "not-a-key-id")

    assert scopes.returncode == 2 and "owner" in scopes.stderr
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    assert malformed.returncode == 2 and "16 hex digits" in malformed.stderr
    assert json.loads(_keys(data_dir, "list", "--json").stdout) == before


def test_submit_sends_the_api_key_and_says_how_to_pass_one(
    served: ServeProcess, first_key: str, data_dir: Path
) -> None:
    url = served.base
    sent = _mesh("submit", "Write the launch email", "--url", url, "--api-key", first_key)
    keyless = _mesh("submit", "Write the launch email", "--url", url)
    read_only = _keys(data_dir, "create", "--tenant", "default", "--scopes", "read")
    refused = _mesh("submit", "Write it", "--url", url, MESH_API_KEY=read_only.stdout.strip())

    assert sent.returncode == 0, sent.stderr
    assert re.search(r"^task \S+ queued$", sent.stdout, re.MULTILINE), sent.stdout
    assert keyless.returncode == 1
    assert "401" in keyless.stderr and "--api-key KEY or MESH_API_KEY=KEY" in keyless.stderr
    assert refused.returncode == 1
    assert "403" in refused.stderr and "read and write scopes" in refused.stderr


def test_a_later_start_prints_no_key_and_the_first_one_still_works(tmp_path: Path) -> None:
    with serve_process(tmp_path, env=NO_DEV_KEY) as first:
        _wait_for_banner(first)
    (key,) = printed_keys(first.output)

    with serve_process(tmp_path, env=NO_DEV_KEY) as again:
        again.wait_ready()
        _wait_for_banner(again)

        assert printed_keys(again.output) == set()
        assert "the key printed at first start" in again.output
        assert _get(again.base, key).status_code == 200


def test_serve_on_real_servers_without_a_key_secret_refuses_to_start(tmp_path: Path) -> None:
    servers = {
        "MESH_DATABASE_URL": TEST_DATABASE_URL,
        "MESH_REDIS_URL": TEST_REDIS_URL,
        "MESH_API_KEY_SECRET": "",
    }
    with serve_process(tmp_path, env=servers) as serve:
        code = serve.wait_exit(timeout=30)

    assert code == 1
    assert "MESH_API_KEY_SECRET is not set" in serve.output
    assert "Mesh is starting" not in serve.output


def test_keys_on_real_servers_hash_under_the_apis_secret(database_url: str) -> None:
    servers = {"MESH_DATABASE_URL": database_url, "MESH_REDIS_URL": TEST_REDIS_URL}
    tenant = f"t-{secrets.token_hex(4)}"
    settings = Settings(
        database_url=database_url, redis_url=TEST_REDIS_URL, api_key_secret=API_KEY_SECRET
    )

    no_secret = _mesh("keys", "list", **servers)
    created = _mesh(
        *("keys", "create", "--tenant", tenant, "--scopes", "read,admin", "--json"),
        **servers,
        MESH_API_KEY_SECRET=API_KEY_SECRET,
    )
    made = json.loads(created.stdout)
    with key_service(settings) as service:
        caller = service.authenticate(made["key"])
        listed = _mesh(
            "keys", "list", "--tenant", tenant, **servers, MESH_API_KEY_SECRET=API_KEY_SECRET
        )
        revoked = _mesh("keys", "revoke", made["id"], **servers, MESH_API_KEY_SECRET=API_KEY_SECRET)
        time.sleep(2.1)  # past the service's cache
        with pytest.raises(Unauthenticated, match="revoked"):
            service.authenticate(made["key"])

    assert no_secret.returncode == 1 and "MESH_API_KEY_SECRET is not set" in no_secret.stderr
    assert (caller.tenant_id, sorted(caller.scopes)) == (tenant, ["admin", "read"])
    assert listed.returncode == 0 and listed.stdout.split()[6:8] == [made["id"], tenant]
    assert revoked.returncode == 0, revoked.stderr
