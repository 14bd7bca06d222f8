"""The bare API baseline: Flask under the same gunicorn, a GET by primary key and a POST that
INSERTs a row and LPUSHes a message, with none of Mesh's layers (no flask-smorest, schemas,
SQLAlchemy, unit of work or Celery). gunicorn loads it as `bench.bare_api:create_app()`.
"""

from __future__ import annotations

import json
import os
import threading
import uuid

import psycopg
import redis
from flask import Flask, Response, request

DATABASE_URL = os.environ.get(
    "BENCH_BARE_DATABASE_URL", "postgresql://postgres@127.0.0.1/mesh_bench"
)
REDIS_URL = os.environ.get("BENCH_BARE_REDIS_URL", "redis://127.0.0.1:6379/7")

_local = threading.local()


def _db() -> psycopg.Connection:
    # gthread's threads live as long as the worker: one connection each, no pool needed.
    if getattr(_local, "conn", None) is None:
        _local.conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return _local.conn


def create_app() -> Flask:
    app = Flask(__name__)
    queue = redis.Redis.from_url(REDIS_URL)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/items/<item_id>")
    def get_item(item_id: str) -> Response | tuple[dict, int]:
        row = _db().execute("SELECT id, body FROM bench_items WHERE id = %s", (item_id,)).fetchone()
        if row is None:
            return {"message": "not found"}, 404
        return Response(
            json.dumps({"id": str(row[0]), "body": row[1]}), mimetype="application/json"
        )

    @app.post("/items")
    def post_item() -> tuple[dict, int, dict]:
        body = request.get_json()
        item_id = uuid.uuid4()
        _db().execute(
            "INSERT INTO bench_items (id, body) VALUES (%s, %s)", (item_id, json.dumps(body))
        )
        queue.lpush("bare:items", str(item_id))
        return {"id": str(item_id)}, 202, {"Location": f"/items/{item_id}"}

    return app


def seed(database_url: str, count: int) -> list[str]:
    """The table, with `count` rows to GET; answers their ids."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_items (id uuid PRIMARY KEY, body jsonb)")
        conn.execute("TRUNCATE bench_items")
        ids = [uuid.uuid4() for _ in range(count)]
        with conn.cursor().copy("COPY bench_items (id, body) FROM STDIN") as copy:
            for i in ids:
                copy.write_row((i, json.dumps({"description": "Write the launch email"})))
    return [str(i) for i in ids]
