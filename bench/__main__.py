"""`python -m bench [--quick]`: every benchmark, against the Redis and Postgres of this machine."""

from __future__ import annotations

import argparse

from bench import gateway
from meshcore.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, under 2 minutes")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    configure_logging("WARNING")
    gateway.main(args.redis_url, args.quick)


if __name__ == "__main__":
    main()
