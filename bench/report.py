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
    target: str = ""  # e.g. "< 50", "ratio >= 0.7"; empty when the figure has none
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def machine() -> dict[str, object]:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "platform": platform.platform()}


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def publish(suite: str, figures: list[Figure]) -> None:
    """Print the table, merge the figures into bench/results/latest.json under `suite`, and
    rewrite bench/results/latest.md from every suite there."""
    print(f"\n{suite}")
    print(f"  {'figure':<52} {'value':>10} {'baseline':>10} {'ratio':>7}  unit")
    for f in figures:
        target = f"  [{f.target}: {verdict(f.met)}]" if f.target else ""
        print(
            f"  {f.name:<52} {f.value:>10.3f} {f.baseline:>10.3f} {f.ratio:>7.2f}  {f.unit}"
            + (f"  ({f.note})" if f.note else "")
            + target,
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    latest = RESULTS / "latest.json"
    data = json.loads(latest.read_text()) if latest.exists() else {}
    data[suite] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": [{**asdict(f), "ratio": round(f.ratio, 4)} for f in figures],
    }
    latest.write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(data))


def markdown(data: dict[str, dict]) -> str:
    """Every suite's figures as one markdown table, with the machine they were measured on."""
    first = next(iter(data.values()), {})
    m = first.get("machine", machine())
    lines = [
        f"Measured {first.get('measured_at', '')} on {m['cpus']} CPUs, "
        f"{m.get('memory_gib', '?')} GiB, {m['platform']}, Python {m['python']}.",
        "",
        "| suite | figure | value | baseline | ratio | unit | target | note |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for suite, entry in data.items():
        for f in entry["figures"]:
            target = f"{f.get('target', '')} {verdict(f.get('met'))}".strip()
            lines.append(
                f"| {suite} | {f['name']} | {f['value']:.3f} | {f['baseline']:.3f} "
                f"| {f['ratio']:.2f} | {f['unit']} | {target} | {f.get('note', '')} |"
            )
    return "\n".join(lines) + "\n"
