"""gunicorn's hooks for Mesh's API: `gunicorn -c python:meshapi.gunicorn_conf ...`.

The workers share one metrics directory, made here in the master before any worker starts
(and so before any of them imports prometheus_client); /metrics in any worker reads them all.

It also turns HTTPS on when MESH_TLS_CERT_FILE and MESH_TLS_KEY_FILE are set, so every way
of starting the API (`mesh serve`, the image's command, compose, Kubernetes) honours them: a
gunicorn config file is read once in the master, as an entry point reads its settings.
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


def child_exit(server: Any, worker: Any) -> None:
    exposition.process_exited(worker.pid)


def on_exit(server: Any) -> None:
    exposition.remove_directory()
