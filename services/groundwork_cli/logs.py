"""`groundwork logs`: print the tail of log files and follow them as they grow
(and across supervisord's rotation)."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import click


def _tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return []
    with path.open(errors="replace") as handle:
        return list(deque(handle, maxlen=lines))


def follow_logs(paths: dict[str, Path], lines: int, follow: bool, prefix: bool) -> None:
    width = max(len(n) for n in paths)

    def emit(name: str, line: str) -> None:
        click.echo((f"{name:<{width}} | " if prefix else "") + line.rstrip("\n"))

    for name, path in paths.items():
        for line in _tail(path, lines):
            emit(name, line)
    if not follow:
        return
    offsets = {n: (p.stat().st_size if p.exists() else 0) for n, p in paths.items()}
    while True:
        for name, path in paths.items():
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < offsets[name]:  # rotated or truncated
                offsets[name] = 0
            if size > offsets[name]:
                with path.open(errors="replace") as handle:
                    handle.seek(offsets[name])
                    for line in handle:
                        emit(name, line)
                    offsets[name] = handle.tell()
        time.sleep(0.3)
