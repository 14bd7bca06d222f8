from __future__ import annotations

import hashlib
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import fakeredis
import pytest

from meshcore import process_secrets
from meshcore.adapters.redis_memory import RedisMemoryStore
from meshcore.adapters.sealing import DataKeyError, Sealer, is_sealed
from meshcore.domain.memory import MemoryItem, MemoryQuery, MemoryType
from meshcore.settings import Settings

OLD, NEW = Sealer.generate_key(), Sealer.generate_key()
CANARY = "canary-7d1f: the launch date is the 14th"


def test_a_sealed_value_reads_back_and_does_not_show_its_text() -> None:
    sealer = Sealer([NEW])

    token = sealer.seal(CANARY)

    assert "canary" not in token and is_sealed(token)
    assert sealer.open(token) == CANARY


def test_json_values_seal_whole_and_read_back_as_they_were() -> None:
    sealer = Sealer([NEW])
    context = {"audience": "CANARY customers", "tags": ["a", 1, None], "nested": {"x": 1.5}}

    token = sealer.seal_json(context)

    assert "CANARY" not in token and "audience" not in token
    assert sealer.open_json(token) == context


@pytest.mark.parametrize("clear", ["", "short", "gAAAAA but not a token", "a" * 200])
def test_a_clear_value_written_before_sealing_reads_back_as_it_is(clear: str) -> None:
    assert Sealer([NEW]).open(clear) == clear


@pytest.mark.parametrize("clear", [{"goal": "old row"}, ["a", "b"], None, 3])
def test_a_clear_json_value_written_before_sealing_reads_back_as_it_is(clear: object) -> None:
    assert Sealer([NEW]).open_json(clear) == clear


def test_the_first_key_seals_and_every_key_opens() -> None:
    under_old = Sealer([OLD]).seal(CANARY)
    both = Sealer([NEW, OLD])

    assert both.open(under_old) == CANARY
    assert Sealer([NEW]).open(both.seal(CANARY)) == CANARY


def test_rotation_reseals_under_the_first_key_so_the_old_key_can_go() -> None:
    under_old = Sealer([OLD]).seal(CANARY)
    both = Sealer([NEW, OLD])

    rotated = both.rotate(under_old)

    assert not both.is_current(under_old) and both.is_current(rotated)
    assert Sealer([NEW]).open(rotated) == CANARY
    with pytest.raises(DataKeyError):
        Sealer([OLD]).open(rotated)


def test_rotation_seals_clear_rows_for_the_first_time() -> None:
    sealer = Sealer([NEW])

    text, data = sealer.rotate("old clear row"), sealer.rotate_json({"k": "old clear row"})

    assert sealer.is_current(text) and sealer.is_current(data)
    assert (sealer.open(text), sealer.open_json(data)) == ("old clear row", {"k": "old clear row"})
    assert not sealer.is_current("old clear row") and not sealer.is_current({"k": "v"})


def test_a_fingerprint_is_a_keyed_hash_equal_for_equal_texts_only() -> None:
    sealer = Sealer([NEW])

    fingerprint = sealer.fingerprint(CANARY)

    assert fingerprint == sealer.fingerprint(CANARY) != sealer.fingerprint(CANARY + ".")
    assert len(fingerprint) == 64 and "canary" not in fingerprint
    # Keyed: neither the text's plain hash, nor another key's fingerprint of it.
    assert fingerprint != hashlib.sha256(CANARY.encode()).hexdigest()
    assert fingerprint != Sealer([OLD]).fingerprint(CANARY)


def test_fingerprints_follow_the_first_key_and_are_found_under_every_key() -> None:
    rotated = Sealer([NEW, OLD])

    assert rotated.fingerprint(CANARY) == Sealer([NEW]).fingerprint(CANARY)
    assert rotated.fingerprints(CANARY) == (
        Sealer([NEW]).fingerprint(CANARY),
        Sealer([OLD]).fingerprint(CANARY),
    )


def test_a_value_no_key_opens_is_a_clear_error_that_names_the_setting() -> None:
    token = Sealer([OLD]).seal(CANARY)

    with pytest.raises(DataKeyError, match="MESH_DATA_KEYS does not hold"):
        Sealer([NEW]).open(token)
    with pytest.raises(DataKeyError, match="MESH_DATA_KEYS does not hold"):
        Sealer([NEW]).rotate(token)


def test_a_malformed_key_is_refused_by_position_without_showing_it() -> None:
    with pytest.raises(DataKeyError, match="key 2 is not a Fernet key") as refused:
        Sealer.from_text(f"{NEW}, not-a-key-at-all")

    assert "not-a-key-at-all" not in str(refused.value)
    with pytest.raises(DataKeyError, match="holds no key"):
        Sealer.from_text(" , ")


def test_the_key_list_reads_like_the_setting_spaces_and_all() -> None:
    token = Sealer([OLD]).seal(CANARY)

    assert Sealer.from_text(f" {NEW} ,{OLD} ").open(token) == CANARY


def test_real_servers_without_data_keys_refuse_to_start() -> None:
    settings = Settings(database_url="postgresql://db/mesh", redis_url="redis://r/0")

    with pytest.raises(ValueError, match="MESH_DATA_KEYS is not set"):
        process_secrets.build_sealer(settings)


def test_the_embedded_default_makes_one_private_key_file_that_every_process_shares(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    sealers: list[Sealer] = []
    starts = [
        threading.Thread(target=lambda: sealers.append(process_secrets.build_sealer(settings)))
        for _ in range(8)
    ]
    for start in starts:
        start.start()
    for start in starts:
        start.join()

    path = tmp_path / "data-keys"
    token = sealers[0].seal(CANARY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(s.open(token) == CANARY for s in sealers)
    assert process_secrets.build_sealer(settings).open(token) == CANARY  # the next start, too
    assert [p.name for p in tmp_path.iterdir()] == ["data-keys"]  # no draft left behind


def test_data_keys_set_win_over_the_embedded_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, data_keys=NEW)

    assert Sealer([NEW]).open(process_secrets.build_sealer(settings).seal(CANARY)) == CANARY
    assert not (tmp_path / "data-keys").exists()


def test_the_memory_view_stores_content_and_metadata_sealed() -> None:
    redis = fakeredis.FakeRedis()
    store = RedisMemoryStore(redis, Sealer([NEW]))
    network = uuid4()
    item = MemoryItem.create(
        tenant_id="acme",
        network_id=network,
        type=MemoryType.FACT,
        content=CANARY,
        confidence=0.9,
        now=datetime(2030, 1, 1, tzinfo=UTC),
        metadata={"source": "canary-meta", "task_id": str(uuid4()), "subtask": "facts"},
    )

    store.put(item)

    stored = b"".join(redis.get(k) or b"" for k in redis.scan_iter("*:item:*"))
    assert b"canary" not in stored and b"facts" not in stored
    assert store.query("acme", network, MemoryQuery()) == [item]
