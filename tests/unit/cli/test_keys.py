"""meshcli/keys.py: what `mesh keys list` and `create --json` show, and never show."""

from __future__ import annotations

from datetime import datetime

from meshcli.keys import created_json, key_json, key_table, scope_list
from meshcore.domain.keys import ApiKey, Scope, format_key, new_key
from meshcore.settings import Settings

CREATED = datetime(2026, 12, 1, 9, 30, 5)
REVOKED = datetime(2026, 12, 2, 10, 0, 0)


def _key(name: str = "ci", revoked_at: datetime | None = None) -> ApiKey:
    key_id, _ = new_key()
    return ApiKey(
        id=key_id,
        tenant_id="acme",
        name=name,
        scopes=frozenset({Scope.WRITE, Scope.READ}),
        created_at=CREATED,
        revoked_at=revoked_at,
    )


def test_the_table_has_a_header_and_one_aligned_row_per_key() -> None:
    live, revoked = _key(), _key(name="", revoked_at=REVOKED)

    lines = key_table([live, revoked]).splitlines()

    assert lines[0].split() == ["ID", "TENANT", "NAME", "SCOPES", "CREATED", "REVOKED"]
    assert lines[1].split() == [live.id, "acme", "ci", "read,write", "2026-12-01", "09:30:05", "-"]
    assert lines[2].split() == [
        *(revoked.id, "acme", "-", "read,write"),
        *("2026-12-01", "09:30:05", "2026-12-02", "10:00:00"),
    ]
    assert lines[0].index("SCOPES") == lines[1].index("read,write")


def test_list_json_names_every_field_but_a_secret() -> None:
    key = _key(revoked_at=REVOKED)

    assert key_json(key) == {
        "id": key.id,
        "tenant": "acme",
        "name": "ci",
        "scopes": ["read", "write"],
        "created_at": "2026-12-01T09:30:05",
        "revoked_at": "2026-12-02T10:00:00",
    }


def test_create_json_is_id_key_tenant_and_scopes() -> None:
    key = _key()
    text = format_key(key.id, new_key()[1])

    assert created_json(key, text) == {
        "id": key.id,
        "key": text,
        "tenant": "acme",
        "scopes": ["read", "write"],
    }


def test_scopes_read_in_the_order_they_are_typed() -> None:
    assert scope_list(frozenset({Scope.ADMIN, Scope.READ, Scope.WRITE})) == "read,write,admin"


def test_an_empty_dev_key_is_no_dev_key() -> None:
    # `MESH_DEV_API_KEY=` in a shell turns the development key off (settings read it so).
    assert Settings().dev_api_key is None
    assert Settings(dev_api_key="").dev_api_key is None
    assert Settings(dev_api_key="mesh-dev").dev_api_key is not None
