"""meshcli/banner.py: what `mesh serve` tells a newcomer about the API key."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshcli.banner import announce
from meshcore.settings import Settings

KEY = "mesh_0123456789abcdef_" + "A" * 43


def _banner(capsys: pytest.CaptureFixture[str], settings: Settings, **options: object) -> str:
    announce(settings, host="127.0.0.1", port=8600, data_dir=Path("/data"), **options)
    return capsys.readouterr().err


def test_the_first_start_banner_prints_the_key_with_commands_that_use_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    banner = _banner(capsys, Settings(), first_key=KEY)

    (try_it,) = [line for line in banner.splitlines() if "Try it:" in line]
    (curl,) = [line for line in banner.splitlines() if "curl" in line]
    assert f"  API key:   {KEY}" in banner.splitlines()
    assert try_it.split("Try it:")[1].strip().startswith(f"MESH_API_KEY={KEY} ")
    assert f'-H "Authorization: Bearer {KEY}"' in curl
    assert "shown only now" in banner


def test_a_later_start_prints_no_key_and_says_where_to_get_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    banner = _banner(capsys, Settings())

    assert "mesh_" not in banner.replace("mesh keys", "")
    assert "the key printed at first start" in banner
    assert "keys create --tenant default --scopes read,write" in banner
    assert '-H "Authorization: Bearer $MESH_API_KEY"' in banner


def test_with_a_dev_key_the_banner_says_it_is_in_use_for_development_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    banner = _banner(capsys, Settings(dev_api_key="mesh-dev-secret"))

    assert "MESH_DEV_API_KEY is in use (for development and tests only" in banner
    assert "mesh-dev-secret" not in banner
    assert 'MESH_API_KEY="$MESH_DEV_API_KEY" ' in banner


def test_on_real_servers_the_banner_says_to_create_a_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    servers = Settings(database_url="postgresql://db/mesh", redis_url="redis://cache/0")

    banner = _banner(capsys, servers)

    assert "keys create --tenant TENANT --scopes read,write" in banner
    assert "first start" not in banner
