"""The secrets every process of a fleet must share: the API keys' hashing secret and the data
keys that seal content at rest. Real servers take them from the settings; the embedded
default makes each once into its data dir, so a restart finds the same ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from meshcore.adapters.sealing import Sealer
from meshcore.settings import Settings


def api_key_secret(settings: Settings) -> bytes:
    """MESH_API_KEY_SECRET; on the embedded default, one generated into the data dir once."""
    if settings.api_key_secret is not None:
        return settings.api_key_secret.get_secret_value().encode()
    if not settings.is_embedded:
        raise ValueError(
            "MESH_API_KEY_SECRET is not set: every API process needs the same secret to check "
            "API keys (make one with `openssl rand -hex 32`)"
        )
    return secret_file(settings.data_dir / "api-key-secret", secrets.token_hex(32)).encode()


def build_sealer(settings: Settings) -> Sealer:
    """The sealer of content at rest, under MESH_DATA_KEYS; on the embedded default, under a
    key generated into the data dir once. ValueError on real servers without keys."""
    return Sealer.from_text(data_keys(settings))


def data_keys(settings: Settings) -> str:
    """MESH_DATA_KEYS; on the embedded default, one key generated into the data dir once.
    ValueError (DataKeyError) for a malformed key, before any process starts with it."""
    if settings.data_keys is not None:
        text = settings.data_keys.get_secret_value()
        Sealer.from_text(text)
        return text
    if not settings.is_embedded:
        raise ValueError(
            "MESH_DATA_KEYS is not set: every process needs the same keys to seal and open the "
            "content it stores (make one with `mesh data-keys generate`)"
        )
    return secret_file(settings.data_dir / "data-keys", Sealer.generate_key())


def secret_file(path: Path, fresh: str) -> str:
    """The secret in `path`, which is made holding `fresh` (mode 0600) if it does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then linked into place: of two processes starting at once, one wins
        # and neither can read a half-written file.
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:  # mkstemp makes it 0600
                file.write(fresh)
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            os.unlink(draft)
    return path.read_text().strip()
