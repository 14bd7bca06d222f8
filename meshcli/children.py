"""How `mesh serve` starts its children: each in a process group of its own.

Ctrl-C in a terminal signals the whole foreground process group. If the children were in
it, each would take its own kind of shutdown at once (gunicorn's quick exit, Celery's warm
shutdown, and a second SIGINT from `mesh serve` makes that a cold one; Redis would go first
and leave the workers reconnecting), so `mesh serve` alone receives the signal and stops
them in order. On Linux a child is also told to stop when `mesh serve` dies without a
chance to stop it (SIGKILL), so no worker outlives it.

A child may run at a lower CPU priority (a higher nice value): on a box the API shares with
its workers, a client's request is answered first, and the workers take what is left.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

_PR_SET_PDEATHSIG = 1


def start_child(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    niceness: int = 0,
    stdin: int | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen:
    """Start argv in a process group of its own, to be stopped by `mesh serve` only, `niceness`
    steps below this process's CPU priority. A piped stdin is text."""
    return subprocess.Popen(
        list(argv), env=env, process_group=0, preexec_fn=_before_exec(niceness),
        stdin=stdin, pass_fds=pass_fds, text=stdin is not None,
    )  # fmt: skip


def _before_exec(niceness: int) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return (lambda: os.nice(niceness)) if niceness else None

    libc()  # loaded here: after the fork, the child should not load libraries

    def _set() -> None:
        set_parent_death_signal()
        if niceness:
            os.nice(niceness)

    return _set


def set_parent_death_signal() -> None:
    """Have Linux send this process SIGTERM when its parent dies (elsewhere, nothing)."""
    if sys.platform.startswith("linux"):
        libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
