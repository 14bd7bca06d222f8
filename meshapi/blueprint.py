"""The Blueprint every resource uses: flask-smorest's, with a JSON parser that cannot crash."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request


class SafeJsonParser(FlaskParser):
    """Turns JSON nested too deep for Python's parser into a 400, not a RecursionError."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        text = req.get_data(cache=True).decode("utf-8")  # webargs answers a UnicodeDecodeError
        try:
            return json.loads(text)
        except RecursionError as exc:
            # webargs reads an empty `doc` as "no body", so the text goes with the error.
            raise json.JSONDecodeError("nested too deeply", text, 0) from exc


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SafeJsonParser()
