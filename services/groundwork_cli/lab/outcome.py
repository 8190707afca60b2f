"""What an experiment returns, and how it is kept: `<name>.json` (the figures and the
table, the command, the machine) and `<name>.png` (its plot)."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

from matplotlib import pyplot
from matplotlib.axes import Axes


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def text(self) -> str:
        cells = [self.columns, *[[_cell(v) for v in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass
class Outcome:
    name: str
    title: str
    table: Table
    figures: dict[str, Any]
    explanation: str  # what the result shows, and why
    plot: Callable[[Axes], None]
    command: str = ""


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(outcome: Outcome, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    outcome.plot(axes)
    axes.set_title(outcome.title)
    figure.tight_layout()
    image = out / f"{outcome.name}.png"
    figure.savefig(image)
    pyplot.close(figure)
    document = {
        "name": outcome.name,
        "title": outcome.title,
        "command": outcome.command,
        "explanation": outcome.explanation,
        "table": asdict(outcome.table),
        "figures": outcome.figures,
        "machine": machine(),
        "plot": image.name,
    }
    path = out / f"{outcome.name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path, image
