#!/bin/sh
# `mesh worker` configured from the environment, so one image serves every pool:
#   MESH_WORKER_QUEUES       comma-separated queues (empty: every queue)
#   MESH_WORKER_POOL         threads (default), gevent, prefork or solo
#   MESH_WORKER_NAME         node name prefix; the node is NAME@<hostname>, which the
#                            image's HEALTHCHECK pings
#   MESH_WORKER_CONCURRENCY  read by `mesh worker` itself (default 32)
# Arguments are passed on after these and win over them (click keeps an option's last value).
set -eu

set -- --pool "${MESH_WORKER_POOL:-threads}" --hostname "${MESH_WORKER_NAME:-mesh}@%h" "$@"
if [ -n "${MESH_WORKER_QUEUES:-}" ]; then
    set -- --queues "$MESH_WORKER_QUEUES" "$@"
fi
# exec: Celery is PID 1 and gets SIGTERM itself, for its warm shutdown.
exec mesh worker "$@"
