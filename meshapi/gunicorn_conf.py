"""gunicorn's hooks for Mesh's API: `gunicorn -c python:meshapi.gunicorn_conf ...`.

The workers share one metrics directory, made here in the master before any worker starts
(and so before any of them imports prometheus_client); /metrics in any worker reads them all.

It also turns HTTPS on when MESH_TLS_CERT_FILE and MESH_TLS_KEY_FILE are set, and chooses
the worker class, so every way of starting the API (`mesh serve`, the image's command,
compose, Kubernetes) runs the same: a gunicorn config file is read once in the master, as an
entry point reads its settings.

Workers are gevent's: a long poll (`?wait=`) or an event stream waits on Redis holding a
greenlet, not a thread, so a process holds thousands of waiting clients while plain requests
go on (psycopg 3 and redis-py yield to other greenlets while they wait on the network).
"""

from __future__ import annotations

from typing import Any

from meshcore.settings import Settings
from meshcore.telemetry import exposition

exposition.own_directory()

_settings = Settings()
# gunicorn's own settings: with a certificate, it serves only HTTPS (TLS 1.2 and later).
certfile = str(_settings.tls_cert_file) if _settings.tls_cert_file else None
keyfile = str(_settings.tls_key_file) if _settings.tls_key_file else None
worker_class = "gevent"
# Connections one worker serves at once (waiting clients included); MESH_MAX_STREAMS bounds
# the event streams among them.
worker_connections = 2000


def child_exit(server: Any, worker: Any) -> None:
    exposition.process_exited(worker.pid)


def on_exit(server: Any) -> None:
    exposition.remove_directory()
