"""`groundwork lab report`: one static HTML page of every experiment saved in a
directory: its plot, table, explanation, the command that made it and the machine."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from groundwork_cli.lab.outcome import _cell

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto;
  padding: 0 1rem; color: #1d2330; }
section { margin: 2.5rem 0; border-top: 1px solid #ddd; }
table { border-collapse: collapse; font-size: .85rem; }
td, th { border-bottom: 1px solid #eee; padding: .2rem .6rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
code, pre { background: #f5f6f8; padding: .1rem .3rem; }
.machine { color: #667; font-size: .85rem; }
"""


def _table(table: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table["columns"])
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table["rows"]
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _section(document: dict[str, Any]) -> str:
    machine = document["machine"]
    return f"""<section id="{html.escape(document["name"])}">
<h2>{html.escape(document["title"])}</h2>
<p>{html.escape(document["explanation"])}</p>
<img src="{html.escape(document["plot"])}" alt="{html.escape(document["title"])}">
{_table(document["table"])}
<p>Made with <code>{html.escape(document["command"])}</code></p>
<p class="machine">{html.escape(machine["host"])} · {html.escape(machine["system"])} ·
{machine["cpus"]} CPUs · Python {html.escape(machine["python"])} · {html.escape(machine["at"])}</p>
</section>"""


def write(directory: Path) -> Path:
    documents = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    documents = [d for d in documents if {"name", "table", "plot"} <= set(d)]
    if not documents:
        raise FileNotFoundError(f"no experiment results in {directory}: run groundwork lab first")
    contents = "".join(
        f'<li><a href="#{html.escape(d["name"])}">{html.escape(d["title"])}</a></li>'
        for d in documents
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Groundwork lab</title>
<style>{STYLE}</style></head>
<body><h1>Groundwork lab</h1>
<p>Each backend fundamental as an experiment on the running mesh, its variants side
by side in one run.</p>
<ul>{contents}</ul>
{"".join(_section(d) for d in documents)}
</body></html>
"""
    path = directory / "report.html"
    path.write_text(page)
    return path
