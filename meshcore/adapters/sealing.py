"""Content sealed at rest: Fernet tokens under rotatable keys (MESH_DATA_KEYS).

The first key seals; every key opens, so a new key can be put first, the record re-sealed
under it (`mesh data-keys rotate`), and only then the old key dropped. A value that is not a
token is a row written before sealing began, and reads back as it was stored.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# A Fernet token: version byte 0x80 and a 64-bit timestamp whose high bytes stay zero until
# 2106, so every token begins "gAAAAA"; padded base64 of 73 bytes or more (one cipher block).
_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]+={0,2}")
_SHORTEST = 100
# Opened tokens are remembered: every step of a task reads the task's words and the same
# memory items again, and opening costs tens of microseconds. A token is random per seal, so
# one always opens to the same text; the cache holds what the process reads anyway.
OPENED_CACHE = 1024
# What the term index's key is derived under: a key for one purpose only, so a term's token
# says nothing about anything sealed under the data key itself.
TERM_KEY_LABEL = b"mesh term index v1"
# Likewise for memory items' fingerprints (adapters/sql/restatements.py).
FINGERPRINT_KEY_LABEL = b"mesh memory fingerprint v1"


class DataKeyError(ValueError):
    """A data key that is malformed, or a sealed value that no data key opens."""


class Sealer:
    """Seals text and JSON values under the first data key and opens them under any."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise DataKeyError("MESH_DATA_KEYS holds no key")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                # The key itself never goes into the message: it is a secret.
                raise DataKeyError(
                    f"MESH_DATA_KEYS key {position} is not a Fernet key (32 url-safe base64 "
                    "bytes; make one with `mesh data-keys generate`)"
                ) from exc
        self._first = fernets[0]
        self._all = MultiFernet(fernets)
        self._term_key = _derived(base64.urlsafe_b64decode(keys[0]), TERM_KEY_LABEL)
        # One per data key, the first key's first: a text is fingerprinted under the first,
        # and found under any, as a token is sealed under the first and opened under any.
        derived = (_derived(base64.urlsafe_b64decode(k), FINGERPRINT_KEY_LABEL) for k in keys)
        self._fingerprint_keys = tuple(dict.fromkeys(derived))
        self._opened = functools.lru_cache(maxsize=OPENED_CACHE)(self._decrypt)

    @classmethod
    def from_text(cls, text: str) -> Sealer:
        """The keys of a comma-separated list, as MESH_DATA_KEYS holds them."""
        return cls([k.strip() for k in text.split(",") if k.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @property
    def term_key(self) -> bytes:
        """The key the memory index hashes terms under (adapters/redis_terms.py), derived from
        the first data key: it changes when the first key does, as the index must then."""
        return self._term_key

    def fingerprint(self, text: str) -> str:
        """A keyed hash (HMAC-SHA256, hex) of `text` under a key derived from the first data
        key: equal texts have equal fingerprints, and without the key no dictionary of likely
        texts finds which one a fingerprint is. It follows the first key, so a rotation
        computes the record's fingerprints again (adapters/sql/rotation.py)."""
        return _hmac_hex(self._fingerprint_keys[0], text)

    def fingerprints(self, text: str) -> tuple[str, ...]:
        """`text`'s fingerprint under every data key, the first key's first: what a value
        fingerprinted before the first key changed (and not yet rotated) may hold."""
        return tuple(_hmac_hex(key, text) for key in self._fingerprint_keys)

    def seal(self, text: str) -> str:
        return self._first.encrypt(text.encode()).decode()

    def open(self, stored: str) -> str:
        """The text a token seals; a value that is no token is a clear row, read as it is."""
        if not is_sealed(stored):
            return stored
        return self._opened(stored)

    def _decrypt(self, token: str) -> str:
        try:
            return self._all.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise DataKeyError(
                "a value in the record is sealed under a key that MESH_DATA_KEYS does not hold "
                "(was a key dropped before `mesh data-keys rotate` finished?)"
            ) from exc

    def seal_json(self, value: object) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")))

    def open_json(self, stored: object) -> object:
        """A JSON column's value: a token (a JSON string) is opened; a clear value returned."""
        if isinstance(stored, str) and is_sealed(stored):
            return json.loads(self.open(stored))
        return stored

    def is_current(self, stored: object) -> bool:
        """Whether the value is sealed under the first key: rotation skips it."""
        if not (isinstance(stored, str) and is_sealed(stored)):
            return False
        try:
            self._first.decrypt(stored.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, stored: str) -> str:
        """The same text sealed under the first key; a clear value is sealed for the first time."""
        if not is_sealed(stored):
            return self.seal(stored)
        try:
            return self._all.rotate(stored.encode()).decode()
        except InvalidToken as exc:
            raise DataKeyError(
                "a value in the record is sealed under a key that MESH_DATA_KEYS does not hold"
            ) from exc

    def rotate_json(self, stored: object) -> str:
        """A JSON column's value sealed under the first key, whether it was sealed or clear."""
        if isinstance(stored, str) and is_sealed(stored):
            return self.rotate(stored)
        return self.seal_json(stored)


def _derived(data_key: bytes, label: bytes) -> bytes:
    return hmac.new(data_key, label, hashlib.sha256).digest()


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def is_sealed(stored: str) -> bool:
    """Whether a stored value is a token (else a clear row written before sealing began)."""
    return (
        len(stored) >= _SHORTEST and len(stored) % 4 == 0 and _TOKEN.fullmatch(stored) is not None
    )
