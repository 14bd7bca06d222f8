"""API keys: who may call Mesh, for which tenant, with which scopes.

A key reads `mesh_<id>_<secret>`: the id is public (it names the key in lists, logs and the
audit trail), the secret is 256 random bits that only the key's holder ever sees. The record
keeps a keyed hash of the secret, never the secret itself.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from meshcore.domain.errors import InvalidInput, Unauthenticated

PREFIX = "mesh"
_ID_BYTES, _SECRET_BYTES = 8, 32
_KEY = re.compile(r"mesh_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


class Scope(enum.StrEnum):
    READ = "read"  # GETs
    WRITE = "write"  # creates, submits, deletes
    ADMIN = "admin"  # keys and tenant-wide operations


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class ApiKey:
    """A key as the record knows it: everything but its secret."""

    id: str
    tenant_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and tenant, and what it may do."""

    key_id: str
    tenant_id: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def new_key() -> tuple[str, str]:
    """A fresh key's id and secret."""
    return secrets.token_hex(_ID_BYTES), secrets.token_urlsafe(_SECRET_BYTES)


def format_key(key_id: str, secret: str) -> str:
    """The key's full text, as its holder sends it."""
    return f"{PREFIX}_{key_id}_{secret}"


def parse_key(text: str) -> tuple[str, str]:
    """The id and secret of a key as a client sent it; Unauthenticated if it is no key."""
    # fullmatch, not `$`: `$` would also take a key followed by a newline.
    found = _KEY.fullmatch(text)
    if found is None:
        raise Unauthenticated("the bearer token is not a Mesh API key (mesh_<id>_<secret>)")
    return found.group(1), found.group(2)


def is_key_id(text: str) -> bool:
    """Whether `text` could be a key's id (so that nothing else reaches the record)."""
    return _KEY_ID.fullmatch(text) is not None


def parse_scopes(text: str | list[str]) -> frozenset[Scope]:
    """Scopes from `read,write` or a list; InvalidInput naming an unknown one."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    unknown = [n for n in names if n not in {s.value for s in Scope}]
    if unknown or not [n for n in names if n]:
        allowed = ", ".join(s.value for s in Scope)
        raise InvalidInput("scopes", f"unknown or no scope {unknown or names}; use {allowed}")
    return frozenset(Scope(n) for n in names if n)
