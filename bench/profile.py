"""`python -m bench.profile [--tasks N] [--latency-ms MS]`: where a worker's CPU goes.

Starts a Mesh fleet, sends N tasks at once and samples every worker with py-spy while they
run; writes the collapsed stacks (flamegraph input) to bench/results/profile-<worker>.txt and
prints each worker's hottest functions, by the share of samples they appear in and of
samples they are on top of. py-spy must be on PATH or next to this Python.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench import processes
from bench.mesh_fleet import mesh_fleet
from bench.processes import Servers
from bench.report import RESULTS


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def hottest(collapsed: Path, top: int = 25, ours: tuple[str, ...] = ()) -> list[str]:
    """Functions by inclusive and by self share of samples, from py-spy's collapsed output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        if "idle" in frames[-1] or any(
            w in frames[-1] for w in ("wait (threading", "select (", "poll (", "_wait_for_tstate")
        ):
            continue  # a waiting thread is not CPU
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            if not ours or any(o in f for o in ours):
                inclusive[f] += n
    lines = [f"{total} busy samples"]
    lines += [f"  incl {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += [f"  self {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top // 2)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    servers = Servers(args.postgres, "mesh_bench", "redis://127.0.0.1:6379/8",
                      "redis://127.0.0.1:6379/7")  # fmt: skip
    processes.prepare(servers)
    specs = processes.mesh_fleet_specs(8, 32)
    with mesh_fleet(servers, specs, latency_ms=args.latency_ms) as fleet:
        outputs = {w.name.split("@")[0]: RESULTS / f"profile-{w.name.split('@')[0]}.txt"
                   for w in fleet.workers}  # fmt: skip
        spies = [
            subprocess.Popen(
                [py_spy(), "record", "--pid", str(w.pid), "--duration", str(args.seconds),
                 "--format", "raw", "--rate", "200", "--output", str(outputs[w.name.split("@")[0]]),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for w in fleet.workers
        ]
        sender = threading.Thread(target=lambda: fleet.wait(fleet.submit(args.tasks), 600))
        sender.start()
        for spy in spies:
            spy.wait()
        sender.join()
    for name, path in outputs.items():
        print(f"\n{name} ({path})")
        print("\n".join(hottest(path, ours=("mesh", "sqlalchemy", "litellm", "celery", "kombu"))))


if __name__ == "__main__":
    main()
