"""Printing figures with their baseline and ratio, and keeping them in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline: float
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def publish(suite: str, figures: list[Figure]) -> None:
    """Print the table and merge the figures into bench/results/latest.json under `suite`."""
    print(f"\n{suite}")
    print(f"  {'figure':<46} {'value':>10} {'baseline':>10} {'ratio':>7}  unit")
    for f in figures:
        print(f"  {f.name:<46} {f.value:>10.3f} {f.baseline:>10.3f} {f.ratio:>7.2f}  {f.unit}"
              + (f"  ({f.note})" if f.note else ""))
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.json"
    data = json.loads(latest.read_text()) if latest.exists() else {}
    data[suite] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": [{**asdict(f), "ratio": round(f.ratio, 4)} for f in figures],
    }
    latest.write_text(json.dumps(data, indent=2) + "\n")
