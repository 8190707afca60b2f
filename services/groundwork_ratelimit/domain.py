"""Which descriptors are limited and how much: fixed windows for rates, and a
count of open streams for concurrency. No I/O: the counters live in Redis (see
repository.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

UNIT_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600}


@dataclass(frozen=True)
class Limit:
    name: str
    requests: int
    unit: str  # SECOND, MINUTE or HOUR

    @property
    def window(self) -> int:
        return UNIT_SECONDS[self.unit]


@dataclass(frozen=True)
class Decision:
    limit: Limit
    count: int
    reset_in: int  # seconds until the window rolls over

    @property
    def over(self) -> bool:
        return self.count > self.limit.requests

    @property
    def remaining(self) -> int:
        return max(0, self.limit.requests - self.count)


def limits_from(user_per_minute: int, auth_per_minute: int) -> dict[str, Limit]:
    """Descriptor key -> limit. Descriptors with other keys are not limited."""
    return {
        "user": Limit("per_user", user_per_minute, "MINUTE"),
        # The edge sends a client's address only on public writes.
        "remote_address": Limit("public_writes_per_client", auth_per_minute, "MINUTE"),
    }


def match(entries: list[tuple[str, str]], limits: dict[str, Limit]) -> tuple[Limit, str] | None:
    """The limit for a descriptor and the counter key's identity, or None."""
    for key, value in entries:
        if key in limits and value:
            return limits[key], f"{key}={value}"
    return None


def window_key(domain: str, identity: str, limit: Limit, now: float) -> tuple[str, int]:
    """The Redis key of the current window and the seconds left in it."""
    start = int(now) // limit.window * limit.window
    return f"rl:{domain}:{identity}:{start}", start + limit.window - int(now)


# A stream the edge counts while it is open (a WebSocket): it sends `open` when
# the upgrade is asked for, with the cap and the stream's longest life from its
# own settings, and `close` when the stream ends (apply_on_stream_done).
STREAM_KEY = "websocket"


@dataclass(frozen=True)
class Stream:
    opening: bool
    client: str  # the counter's identity: the client's address
    stream: str  # the edge's request id for the stream
    most: int  # open streams allowed per client (when opening)
    lifetime: int  # seconds after which an open stream is no longer counted

    name: ClassVar[str] = "websockets_per_client"


def stream_from(entries: list[tuple[str, str]]) -> Stream | None:
    """The open or close a stream descriptor carries, or None when a part is
    missing or malformed: such an open is not counted rather than refused."""
    found = dict(entries)
    kind = found.get(STREAM_KEY)
    client, stream = found.get("remote_address", ""), found.get("stream", "")
    if kind not in ("open", "close") or not client or not stream:
        return None
    try:
        most, lifetime = int(found.get("most", "0")), int(found.get("lifetime", "0"))
    except ValueError:
        return None
    if kind == "open" and (most < 1 or lifetime < 1):
        return None
    return Stream(kind == "open", client, stream, most, lifetime)
