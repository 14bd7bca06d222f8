from __future__ import annotations

import pytest

from meshcore.domain.errors import InvalidInput, Unauthenticated
from meshcore.domain.keys import (
    ALL_SCOPES,
    Principal,
    Scope,
    format_key,
    is_key_id,
    new_key,
    parse_key,
    parse_scopes,
)


def test_a_new_key_reads_mesh_id_secret_and_parses_back() -> None:
    key_id, secret = new_key()

    text = format_key(key_id, secret)

    assert text == f"mesh_{key_id}_{secret}"
    assert parse_key(text) == (key_id, secret)
    assert is_key_id(key_id)


def test_a_new_key_has_a_16_hex_id_and_a_256_bit_secret() -> None:
    key_id, secret = new_key()

    assert len(key_id) == 16 and int(key_id, 16) >= 0
    assert len(secret) == 43  # 32 bytes of urlsafe base64, unpadded


def test_no_two_new_keys_are_alike() -> None:
    keys = [new_key() for _ in range(1000)]

    assert len({k for k, _ in keys}) == len({s for _, s in keys}) == 1000


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-key",
        "mesh_0123456789abcdef",
        "mesh_0123456789abcdef_short",
        "mesh_0123456789ABCDEF_" + "a" * 43,  # the id is lower-case hex
        "mesh_0123456789abcdeg_" + "a" * 43,
        "mash_0123456789abcdef_" + "a" * 43,
        "mesh_0123456789abcdef_" + "a" * 44,
        "mesh_0123456789abcdef_" + "a" * 42 + "=",
        "mesh_0123456789abcdef_" + "a" * 43 + "\n",
        " mesh_0123456789abcdef_" + "a" * 43,
        "mesh_0123456789abcdef_" + "é" * 43,
    ],
)
def test_anything_but_a_whole_key_is_refused_as_unauthenticated(text: str) -> None:
    with pytest.raises(Unauthenticated, match="mesh_<id>_<secret>"):
        parse_key(text)


@pytest.mark.parametrize("text", ["", "0123456789abcde", "0123456789abcdef0", "../../etc/pass"])
def test_only_16_lower_case_hex_is_a_key_id(text: str) -> None:
    assert not is_key_id(text)


def test_scopes_are_read_from_a_comma_list_or_a_list() -> None:
    assert parse_scopes("read, write") == {Scope.READ, Scope.WRITE}
    assert parse_scopes(["admin"]) == {Scope.ADMIN}
    assert parse_scopes("read,write,admin") == ALL_SCOPES


@pytest.mark.parametrize("text", ["", " , ", [], "read,owner", ["root"]])
def test_unknown_or_no_scopes_are_invalid_input_naming_the_allowed_ones(
    text: str | list[str],
) -> None:
    with pytest.raises(InvalidInput, match="read, write, admin") as raised:
        parse_scopes(text)

    assert raised.value.field == "scopes"


def test_a_principal_may_do_what_its_scopes_say_and_no_more() -> None:
    reader = Principal("0123456789abcdef", "acme", frozenset({Scope.READ}))

    assert reader.may(Scope.READ)
    assert not reader.may(Scope.WRITE)
    assert not reader.may(Scope.ADMIN)
