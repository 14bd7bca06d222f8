"""The drills' counts, printed at the end of the run, where a closing note can quote them."""

from __future__ import annotations

import pytest

REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault drills")
        for line in REPORT:
            terminalreporter.write_line(line)
