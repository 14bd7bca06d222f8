"""`python -m bench [--quick] [--only SUITE ...]`: every benchmark, against the Redis and
Postgres of this machine, each with its baseline measured in the same run.

The bench keeps to its own state: Postgres database `mesh_bench` (created and migrated here),
Redis database 8 for Mesh and 7 for the bare baselines (9-15 belong to the tests).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable

# `cost` first, on a quiet box: the fleet exactly as `mesh serve` starts it. Then, in this
# order, the suites that run the same fleet follow each other, so it starts once:
# api_load stops it (the API alone on the cores) and fanout runs a fleet of its own.
SUITES = (
    "cost", "orchestration", "scale", "users", "footprint", "waiting", "api_load", "fanout",
    "gateway", "sealing", "row_security", "retrieval", "memory_writes",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, under 2 minutes")
    parser.add_argument("--only", nargs="+", choices=SUITES, help="run only these suites")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="any existing database; the bench creates its own next to it")
    parser.add_argument("--database", default="mesh_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="without a db number")
    args = parser.parse_args()

    servers_redis = args.redis.rstrip("/")
    # The bare pipeline's workers and this process build its Celery app from these at import.
    os.environ["BENCH_BARE_REDIS_URL"] = f"{servers_redis}/7"
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    from bench import processes
    from bench.processes import Servers
    from bench.session import Session
    from meshcore.logs import configure_logging

    servers = Servers(args.postgres, args.database, f"{servers_redis}/8", f"{servers_redis}/7")
    os.environ["BENCH_BARE_DATABASE_URL"] = servers.psycopg_url
    configure_logging("WARNING")
    processes.prepare(servers)
    failed = []
    session = Session(servers, args.quick)
    # A TERM (or an INT to a background job, which ignores it) must still stop the children.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    began = time.monotonic()
    try:
        for name in args.only or SUITES:
            started = time.monotonic()
            try:
                _suite(name)(session)
            except Exception as exc:  # noqa: BLE001 - one suite's failure must not hide others
                failed.append(name)
                print(f"\n{name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                # Whatever the failed suite left queued must not load the next one.
                session.stop_fleet()
                processes.flush_queues(servers)
            print(f"  ({name}: {time.monotonic() - started:.0f} s)", flush=True)
    finally:
        session.close()
    print(f"\nall suites: {time.monotonic() - began:.0f} s")
    from bench.report import RESULTS

    print(f"\nresults: {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'}")
    if failed:
        sys.exit(f"suites that failed: {', '.join(failed)}")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _suite(name: str) -> Callable[..., None]:
    import importlib

    module = importlib.import_module(f"bench.{name}")
    if name == "gateway":  # the older suite takes the Redis URL itself
        return lambda session: module.main(session.servers.mesh_redis, session.quick)
    return module.main


if __name__ == "__main__":
    main()
