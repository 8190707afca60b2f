"""Which descriptors are limited and how much, and the fixed-window arithmetic.
No I/O: the counters live in Redis (see repository.py)."""

from __future__ import annotations

from dataclasses import dataclass

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
