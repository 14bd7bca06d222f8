"""Ids in paths: anything that is not a UUID is a 404 that says so, naming the kind of id."""

from __future__ import annotations

from uuid import UUID

from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter, Map


class IdConverter(BaseConverter):
    """`<id(network):network_id>` matches any segment and turns it into a UUID."""

    def __init__(self, map: Map, kind: str = "resource") -> None:
        super().__init__(map)
        self.kind = kind

    def to_python(self, value: str) -> UUID:
        try:
            return UUID(value)
        except ValueError:
            # Raised from routing, Flask hands this to the JSON error handler.
            raise NotFound(f"{self.kind}_id: {value!r} is not a valid id (a UUID)") from None

    def to_url(self, value: object) -> str:
        return str(value)


def id_schema(_converter: BaseConverter) -> dict[str, str]:
    return {"type": "string", "format": "uuid"}
