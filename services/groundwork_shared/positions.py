"""Redis stream entry ids ("<milliseconds>-<sequence>"): where a reader resumes,
and the versions of what a consumer applied. Parsed, they order as Redis orders them."""

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


def text(value: bytes | str | Position) -> str:
    """An entry id as Redis returns it (bytes or str), or a parsed one, as text."""
    if isinstance(value, tuple):
        return f"{value[0]}-{value[1]}"
    return value.decode() if isinstance(value, bytes) else value
