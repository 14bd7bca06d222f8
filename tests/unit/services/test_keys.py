from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from structlog.testing import capture_logs

from meshcore.domain.errors import NotFound, Unauthenticated
from meshcore.domain.keys import ALL_SCOPES, Scope, format_key, new_key, parse_key
from meshcore.services import keys as keys_module
from meshcore.services.keys import CACHE_SECONDS, KeyService
from tests.fakes import FakeClock, FakeKeyStore, FakeTimer

SECRET = b"server-secret-for-unit-tests"
READ_WRITE = frozenset({Scope.READ, Scope.WRITE})
DEV_KEY = "dev-key-for-tests-only"


@pytest.fixture
def store() -> FakeKeyStore:
    return FakeKeyStore()


@pytest.fixture
def timer() -> FakeTimer:
    return FakeTimer()


def service(store: FakeKeyStore, timer: FakeTimer, **kwargs: object) -> KeyService:
    """One API process's key service over the shared store."""
    options: dict = {"secret": SECRET, **kwargs}
    return KeyService(store=store, clock=FakeClock(), timer=timer, **options)


@pytest.fixture
def keys(store: FakeKeyStore, timer: FakeTimer) -> KeyService:
    return service(store, timer)


def test_a_created_key_authenticates_as_its_tenant_with_its_scopes(keys: KeyService) -> None:
    key, text = keys.create(tenant_id="acme", scopes=READ_WRITE, name="backend")

    caller = keys.authenticate(text)

    assert (caller.key_id, caller.tenant_id, caller.scopes) == (key.id, "acme", READ_WRITE)
    assert text.startswith(f"mesh_{key.id}_")


def test_the_record_keeps_an_hmac_of_the_secret_never_the_secret(
    keys: KeyService, store: FakeKeyStore
) -> None:
    key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    secret = parse_key(text)[1]

    stored, digest = store.rows[key.id]

    assert secret not in repr(stored) and secret not in digest
    assert digest == hmac.new(SECRET, secret.encode(), hashlib.sha256).hexdigest()


def test_a_key_does_not_authenticate_under_another_server_secret(
    keys: KeyService, store: FakeKeyStore, timer: FakeTimer
) -> None:
    _key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    elsewhere = service(store, timer, secret=b"another-server-secret")

    with pytest.raises(Unauthenticated, match="not known"):
        elsewhere.authenticate(text)


def test_the_right_id_with_a_wrong_secret_is_refused(keys: KeyService) -> None:
    key, _text = keys.create(tenant_id="acme", scopes=READ_WRITE)

    with pytest.raises(Unauthenticated, match="not known"):
        keys.authenticate(format_key(key.id, new_key()[1]))


def test_an_unknown_key_is_refused(keys: KeyService) -> None:
    with pytest.raises(Unauthenticated, match="not known"):
        keys.authenticate(format_key(*new_key()))


@pytest.mark.parametrize(
    "token", ["", "not-a-key", "mesh_", "Bearer mesh_x", "mesh_0123456789abcdef_x", "é" * 20]
)
def test_a_malformed_token_is_refused_without_reading_the_record(
    keys: KeyService, store: FakeKeyStore, token: str
) -> None:
    with pytest.raises(Unauthenticated, match="not a Mesh API key"):
        keys.authenticate(token)

    assert store.finds == 0


def test_a_revoked_key_is_refused_at_once_by_the_process_that_revoked_it(
    keys: KeyService,
) -> None:
    key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    keys.authenticate(text)

    keys.revoke(key.id, tenant_id="acme")

    with pytest.raises(Unauthenticated, match="revoked"):
        keys.authenticate(text)


def test_another_process_refuses_a_revoked_key_once_its_cache_expires(
    keys: KeyService, store: FakeKeyStore, timer: FakeTimer
) -> None:
    key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    other = service(store, timer)
    other.authenticate(text)
    keys.revoke(key.id, tenant_id="acme")

    other.authenticate(text)  # still trusted from its cache: this is the window
    timer.now += CACHE_SECONDS + 0.01

    with pytest.raises(Unauthenticated, match="revoked"):
        other.authenticate(text)
    assert CACHE_SECONDS < 5  # the bound for a revocation to reach the fleet


def test_a_verified_key_is_read_from_the_record_once_per_cache_period(
    keys: KeyService, store: FakeKeyStore, timer: FakeTimer
) -> None:
    _key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)

    for _ in range(50):
        keys.authenticate(text)
    assert store.finds == 1

    timer.now += CACHE_SECONDS + 0.01
    keys.authenticate(text)
    assert store.finds == 2


def test_a_flood_of_made_up_ids_does_not_grow_the_cache_past_its_bound(
    store: FakeKeyStore, timer: FakeTimer
) -> None:
    keys = service(store, timer, cache_size=3)
    _key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    keys.authenticate(text)

    for _ in range(3):
        with pytest.raises(Unauthenticated):
            keys.authenticate(format_key(*new_key()))
    keys.authenticate(text)

    # The bound emptied the cache, the real key with it: it was looked up again.
    assert store.finds == 5


class CountingHmac:
    """The hmac module, counting the digests made and compared."""

    def __init__(self) -> None:
        self.made = self.compared = 0

    def new(self, *args: object, **kwargs: object) -> hmac.HMAC:
        self.made += 1
        return hmac.new(*args, **kwargs)  # type: ignore[arg-type]

    def compare_digest(self, a: str | bytes, b: str | bytes) -> bool:
        self.compared += 1
        return hmac.compare_digest(a, b)  # type: ignore[type-var]


def test_an_unknown_id_costs_the_same_hmac_and_comparison_as_a_wrong_secret(
    keys: KeyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _text = keys.create(tenant_id="acme", scopes=READ_WRITE)
    work: dict[str, tuple[int, int]] = {}
    for name, token in [
        ("unknown id", format_key(*new_key())),
        ("wrong secret", format_key(key.id, new_key()[1])),
    ]:
        counting = CountingHmac()
        monkeypatch.setattr(keys_module, "hmac", counting)
        with pytest.raises(Unauthenticated):
            keys.authenticate(token)
        work[name] = (counting.made, counting.compared)

    assert work["unknown id"] == work["wrong secret"] == (1, 1)


def test_the_dev_key_is_a_key_of_tenant_default_with_every_scope(
    store: FakeKeyStore, timer: FakeTimer
) -> None:
    keys = service(store, timer, dev_key=DEV_KEY)

    caller = keys.authenticate(DEV_KEY)

    assert (caller.tenant_id, caller.scopes) == ("default", ALL_SCOPES)
    assert store.finds == 0


def test_only_the_exact_dev_key_is_accepted(store: FakeKeyStore, timer: FakeTimer) -> None:
    keys = service(store, timer, dev_key=DEV_KEY)

    for near in [DEV_KEY + " ", DEV_KEY.upper(), DEV_KEY[:-1], "é" + DEV_KEY]:
        with pytest.raises(Unauthenticated):
            keys.authenticate(near)


def test_without_a_dev_key_its_value_is_no_key(keys: KeyService) -> None:
    with pytest.raises(Unauthenticated, match="not a Mesh API key"):
        keys.authenticate(DEV_KEY)


def test_keys_are_listed_per_tenant_and_revoked_only_in_their_own(keys: KeyService) -> None:
    mine, _ = keys.create(tenant_id="acme", scopes=READ_WRITE)
    theirs, _ = keys.create(tenant_id="globex", scopes=READ_WRITE)

    assert [k.id for k in keys.list("acme")] == [mine.id]
    with pytest.raises(NotFound, match=f"key {theirs.id} not found"):
        keys.revoke(theirs.id, tenant_id="acme")
    assert not keys.list("globex")[0].is_revoked


@pytest.mark.parametrize("key_id", ["", "x" * 16, "0123456789ABCDEF", "a" * 200, "\x00" * 16])
def test_revoking_what_cannot_be_a_key_id_is_not_found(keys: KeyService, key_id: str) -> None:
    with pytest.raises(NotFound):
        keys.revoke(key_id, tenant_id="acme")


def test_revoking_twice_answers_the_key_revoked_at_the_first_time(keys: KeyService) -> None:
    key, _ = keys.create(tenant_id="acme", scopes=READ_WRITE)

    first = keys.revoke(key.id, tenant_id="acme")
    second = keys.revoke(key.id, tenant_id="acme")

    assert first.revoked_at is not None and second.revoked_at == first.revoked_at


def test_no_secret_reaches_the_logs(
    keys: KeyService, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        key, text = keys.create(tenant_id="acme", scopes=READ_WRITE)
        keys.authenticate(text)
        keys.revoke(key.id, tenant_id="acme")

    # Once an app configured logging in this process (and structlog cached its loggers), the
    # events reach the standard logging handlers or the output instead.
    written = repr(logs) + "".join(capfd.readouterr()) + caplog.text
    assert "key.created" in written and "key.revoked" in written
    assert parse_key(text)[1] not in written
