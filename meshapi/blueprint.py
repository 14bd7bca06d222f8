"""The Blueprint every resource uses: flask-smorest's, with a JSON parser that cannot crash.

A body is read only when it is sent as JSON: anything else is a 415 that says how to send it,
and a JSON body that does not parse is a 400 that says so. Without this, webargs reads a body
sent as a form (what `curl -d` does) as no body at all, and answers a misleading 422 for each
required field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import flask
import flask_smorest
import flask_smorest.pagination
import marshmallow as ma
from webargs.flaskparser import FlaskParser, abort, is_json_request

from meshapi.schemas.errors import ErrorSchema

# A page past this is refused (422 naming `page`): unbounded, page x page_size overflowed the
# database's OFFSET and answered 500.
MAX_PAGE = 1_000_000
JSON_ONLY = "The request body must be JSON sent with `Content-Type: application/json`"


class SafeJsonParser(FlaskParser):
    """Reads JSON bodies only: other content types are a 415, malformed JSON a clear 400."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            sent = req.mimetype or "no Content-Type"
            problem = f"{JSON_ONLY}; this request sent {sent}."
            abort(415, message=problem, messages={"json": [problem]})
        text = req.get_data(cache=True).decode("utf-8")  # webargs answers a UnicodeDecodeError
        try:
            return json.loads(text)
        except RecursionError as exc:
            # webargs reads an empty `doc` as "no body", so the text goes with the error.
            raise json.JSONDecodeError("nested too deeply", text, 0) from exc

    def _handle_invalid_json_error(
        self,
        error: json.JSONDecodeError | UnicodeDecodeError,
        req: flask.Request,
        *args: Any,
        **kwargs: Any,
    ) -> NoReturn:
        if isinstance(error, json.JSONDecodeError):
            where = f"{error.msg} at line {error.lineno} column {error.colno}"
        else:
            where = "it is not UTF-8"
        problem = f"Invalid JSON body: the body is not valid JSON ({where})."
        abort(400, exc=error, messages={"json": [problem]})


def _bounded_pagination_schema(page: int, page_size: int, max_page_size: int) -> type[ma.Schema]:
    schema = _unbounded_pagination_schema(page, page_size, max_page_size)
    schema._declared_fields["page"].validators[:] = [ma.validate.Range(min=1, max=MAX_PAGE)]
    return schema


# flask-smorest builds the `page` parameter in this module-level function and offers no
# setting for its bound, so Mesh's version of it is put in its place.
_unbounded_pagination_schema = flask_smorest.pagination._pagination_parameters_schema_factory
flask_smorest.pagination._pagination_parameters_schema_factory = _bounded_pagination_schema


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SafeJsonParser()

    def arguments(
        self, schema: Any, *, location: str = "json", **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """flask-smorest's `arguments`; a JSON body also documents the 415 it may answer."""
        parse = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return parse
        unsupported = self.alt_response(
            415, schema=ErrorSchema, description=f"{JSON_ONLY}; any other is refused."
        )
        return lambda view: unsupported(parse(view))
