"""gunicorn's hooks for Mesh's API: `gunicorn -c python:meshapi.gunicorn_conf ...`.

The workers share one metrics directory, made here in the master before any worker starts
(and so before any of them imports prometheus_client); /metrics in any worker reads them all.
"""

from __future__ import annotations

from typing import Any

from meshcore.telemetry import exposition

exposition.own_directory()


def child_exit(server: Any, worker: Any) -> None:
    exposition.process_exited(worker.pid)


def on_exit(server: Any) -> None:
    exposition.remove_directory()
