"""Redis stream entry ids ("<milliseconds>-<sequence>") as resume positions."""

from __future__ import annotations

import re

_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")

Position = tuple[int, int]
ORIGIN = "0-0"


def parse(text: str) -> Position:
    """Raise ValueError unless `text` is a stream entry id."""
    match = _ID.match(text)
    if match is None:
        raise ValueError(f"not a stream position: {text!r} (expected <ms>-<seq>)")
    return int(match[1]), int(match[2])


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
