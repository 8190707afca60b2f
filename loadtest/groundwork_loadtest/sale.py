"""The flash sale's timeline, apart from Locust so it can be reasoned about (and
tested) without Locust's gevent patching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlashSale:
    peak_users: int
    ramp_seconds: float
    hold_seconds: float

    def at(self, elapsed: float) -> tuple[int, float] | None:
        """(users, spawn rate) wanted `elapsed` seconds in; None when the sale is over."""
        if elapsed >= self.ramp_seconds + self.hold_seconds:
            return None
        rate = self.peak_users / max(self.ramp_seconds, 0.1)
        if elapsed < self.ramp_seconds:
            # Step the target up every second so Locust spawns at the ramp's rate.
            stepped = round(self.peak_users * (elapsed + 1) / self.ramp_seconds)
            return max(1, min(stepped, self.peak_users)), rate
        return self.peak_users, rate
