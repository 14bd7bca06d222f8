"""meshcli/main.py: `mesh` starts without the HTTP client, which only API commands import."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_cli_loads_neither_meshclient_nor_httpx() -> None:
    probe = (
        "import sys, meshcli.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'meshclient')))"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]"
