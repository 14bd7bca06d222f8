"""Log lines: JSON with the task's context, and no secret whatever logs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from meshcore.logs import REDACTED, Redactor, secrets_in

PROGRAM = """
import logging, structlog
from meshcore.logs import configure_logging
configure_logging("INFO")
structlog.contextvars.bind_contextvars(task_id="t-1", agent="content", queue="agent.content")
structlog.get_logger("mesh").info("model.failed", detail="key sk-live-ABCDEF123456 rejected")
logging.getLogger("some.library").warning("connecting with %s", "hunter2-password")
try:
    raise RuntimeError("token tok_9f8e7d6c5b4a in the way")
except RuntimeError:
    structlog.get_logger("mesh").exception("step.crashed")
"""


def test_secrets_are_the_keys_tokens_and_url_passwords_of_the_environment() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-live-ABCDEF123456",
        "GITHUB_TOKEN": "tok_9f8e7d6c5b4a",
        "MESH_DATABASE_URL": "postgresql+psycopg://mesh:hunter2-password@db/mesh",
        "MESH_REDIS_URL": "redis://redis:6379/0",
        "MESH_DATA_KEYS": "new-fernet-key-AAAA=, old-fernet-key-BBBB=",
        "FLOWER_BASIC_AUTH": "admin:flower-pass",
        "SHORT_TOKEN": "abc",  # too short to redact without mangling ordinary words
        "HOME": "/root",
    }
    assert set(secrets_in(environ)) == {
        "sk-live-ABCDEF123456", "tok_9f8e7d6c5b4a", "hunter2-password",
        "new-fernet-key-AAAA=", "old-fernet-key-BBBB=", "admin:flower-pass",
    }  # fmt: skip


def test_the_redactor_reaches_into_nested_values() -> None:
    redact = Redactor(["s3cr3t-value"])
    event = redact(None, "info", {"event": "x", "detail": {"why": ["bad s3cr3t-value"]}, "n": 3})
    assert event == {"event": "x", "detail": {"why": [f"bad {REDACTED}"]}, "n": 3}


def test_every_line_is_json_with_context_and_no_secret_from_us_or_a_library() -> None:
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-live-ABCDEF123456",
        "GITHUB_TOKEN": "tok_9f8e7d6c5b4a",
        "MESH_DATABASE_URL": "postgresql+psycopg://mesh:hunter2-password@db/mesh",
    }
    run = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                         text=True, check=True, cwd=os.getcwd())
    output = run.stdout + run.stderr

    for secret in ("sk-live-ABCDEF123456", "tok_9f8e7d6c5b4a", "hunter2-password"):
        assert secret not in output
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert [e["event"] for e in lines] == [
        "model.failed", f"connecting with {REDACTED}", "step.crashed"
    ]
    first = lines[0]
    assert {k: first[k] for k in ("task_id", "agent", "queue", "network_id", "trace_id")} == {
        "task_id": "t-1", "agent": "content", "queue": "agent.content",
        "network_id": None, "trace_id": None,
    }
    assert first["level"] == "info" and first["time"].endswith("Z")
    assert REDACTED in lines[2]["exception"]
