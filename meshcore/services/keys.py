"""API keys: creating, listing and revoking them, and telling who a request's key belongs to.

Only a keyed hash of each secret is stored: HMAC-SHA256 under a server secret, not a password
hash, because a key is 256 random bits (nothing to guess) and verifying sits on every request.
A verified key is remembered for `cache_seconds`, so a revocation reaches every API process
within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable

import structlog

from meshcore.domain.errors import NotFound, Unauthenticated
from meshcore.domain.keys import (
    ALL_SCOPES,
    ApiKey,
    Principal,
    Scope,
    format_key,
    is_key_id,
    new_key,
    parse_key,
)
from meshcore.domain.network import DEFAULT_TENANT
from meshcore.ports import Clock, KeyStore

log = structlog.get_logger(__name__)

DEV_KEY_ID = "dev"
# Revocation must reach the fleet within 5 s; each process trusts what it verified this long.
CACHE_SECONDS = 2.0
# A flood of made-up ids must not grow the cache forever.
CACHE_SIZE = 10_000


class KeyService:
    def __init__(
        self,
        *,
        store: KeyStore,
        clock: Clock,
        secret: bytes,
        dev_key: str | None = None,
        cache_seconds: float = CACHE_SECONDS,
        cache_size: int = CACHE_SIZE,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._clock, self._secret = store, clock, secret
        # Bytes: compare_digest refuses str that is not ASCII, which a header may carry.
        self._dev_key = dev_key.encode() if dev_key is not None else None
        self._cache_seconds, self._cache_size = cache_seconds, cache_size
        # Monotonic, not the clock: a wall clock set back must not stretch the cache.
        self._timer = timer
        self._cache: dict[str, tuple[float, ApiKey | None, str]] = {}
        self._lock = threading.Lock()

    def create(
        self, *, tenant_id: str, scopes: Iterable[Scope], name: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key and its full text, which is shown once and never stored."""
        key_id, secret = new_key()
        key = ApiKey(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            scopes=frozenset(scopes),
            created_at=self._clock.now(),
        )
        self._store.add(key, self._digest(secret))
        shown = sorted(s.value for s in key.scopes)
        log.info("key.created", key_id=key_id, tenant=tenant_id, scopes=shown)
        return key, format_key(key_id, secret)

    def list(self, tenant_id: str | None) -> list[ApiKey]:
        """The tenant's keys, oldest first, revoked ones too (every tenant's with None)."""
        return self._store.list(tenant_id)

    def revoke(self, key_id: str, *, tenant_id: str | None) -> ApiKey:
        """Revoke the tenant's key (NotFound for another tenant's, as for none at all)."""
        if not is_key_id(key_id):
            raise NotFound("key", key_id)
        key = self._store.revoke(key_id, tenant_id, self._clock.now())
        with self._lock:
            self._cache.pop(key_id, None)
        log.info("key.revoked", key_id=key_id, tenant=key.tenant_id)
        return key

    def authenticate(self, token: str) -> Principal:
        """Who holds `token`; Unauthenticated if it is malformed, unknown or revoked."""
        if self._dev_key is not None and hmac.compare_digest(token.encode(), self._dev_key):
            return Principal(DEV_KEY_ID, DEFAULT_TENANT, ALL_SCOPES)
        key_id, secret = parse_key(token)
        key, digest = self._find(key_id)
        # Compared even for an unknown id, so that a miss costs what a hit does.
        is_match = hmac.compare_digest(digest, self._digest(secret))
        if key is None or not is_match:
            raise Unauthenticated("the API key is not known")
        if key.is_revoked:
            raise Unauthenticated("the API key has been revoked")
        return Principal(key.id, key.tenant_id, key.scopes)

    def claimant(self, token: str) -> tuple[str | None, str | None]:
        """The key id a refused token names, and the key's tenant if its secret is right (a
        revoked key's holder): whom an audit trail may charge a refusal to. A wrong secret
        names no tenant, so no one can write into a tenant's trail by guessing its key ids."""
        try:
            key_id, secret = parse_key(token)
        except Unauthenticated:
            return None, None
        key, digest = self._find(key_id)
        if key is None or not hmac.compare_digest(digest, self._digest(secret)):
            return key_id, None
        return key_id, key.tenant_id

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's verified keys from this process's cache (its keys were erased)."""
        with self._lock:
            for key_id, (_, key, _) in list(self._cache.items()):
                if key is not None and key.tenant_id == tenant_id:
                    del self._cache[key_id]

    @property
    def cache_seconds(self) -> float:
        """How long another process may still take a key this one revoked or erased."""
        return self._cache_seconds

    def _find(self, key_id: str) -> tuple[ApiKey | None, str]:
        now = self._timer()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        found = self._store.find(key_id)
        key, digest = found if found is not None else (None, "0" * 64)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key_id] = (now + self._cache_seconds, key, digest)
        return key, digest

    def _digest(self, secret: str) -> str:
        return hmac.new(self._secret, secret.encode(), hashlib.sha256).hexdigest()
