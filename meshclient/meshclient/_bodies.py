"""Reading an answer's body."""

from __future__ import annotations

from typing import Any

import httpx

from meshclient._errors import ProtocolError


def json_of(response: httpx.Response) -> Any:
    """An answer's JSON; a body that is not JSON is a ProtocolError, not a crash."""
    try:
        return response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "no content type")
        raise ProtocolError(
            f"the API answered {response.status_code} with a body that is not JSON ({kind})"
        ) from exc
