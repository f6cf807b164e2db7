"""Figures of one run, each next to the limit it is compared with, as a table and JSON.

Absolute numbers drift on a shared machine; a ratio against a limit measured in the same
run does not drift nearly as much, so that is what targets are set on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    stage: str
    name: str
    value: float | None  # None: not measured (see `note`)
    unit: str
    limit_name: str = ""  # what the value is compared with ("" when it is a limit itself)
    limit: float | None = None
    target: str = ""  # e.g. "ratio >= 0.50", "< 60 s"
    met: bool | None = None  # None: no target, or not measured
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.limit:
            return None
        return self.value / self.limit


@dataclass
class Run:
    started: str = field(default_factory=lambda: dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    machine: dict[str, Any] = field(default_factory=lambda: machine())
    settings: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures]}

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"bench-{self.started.replace(':', '')[:17]}.json"
        text = json.dumps(self.to_json(), indent=2)
        path.write_text(text)
        (directory / "latest.json").write_text(text)
        return path


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}",
            "load_average_at_start": [round(x, 2) for x in load]}


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s", "MB", "µs", "% of a core"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def table(run: Run) -> str:
    """A Markdown table: readable in a terminal and pasted as is into bench/README.md."""
    rows = [("stage", "figure", "value", "compared with", "limit", "ratio", "target", "met", "note")]
    for f in run.figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        met = "" if f.met is None else ("yes" if f.met else "NO")
        note = f"not measured yet: {f.note}" if f.value is None else f.note
        rows.append((f.stage, f.name, _num(f.value, f.unit), f.limit_name,
                     "" if f.limit is None else _num(f.limit, f.unit), ratio, f.target, met, note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
