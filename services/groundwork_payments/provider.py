"""The simulated card network: deterministic test cards, plus latency and a
random failure rate from settings for fault injection."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from pydantic import Field

from groundwork_shared.errors import Unavailable
from groundwork_shared.settings import ServiceSettings

APPROVE = "tok_approve"
DECLINE = "tok_decline"
TIMEOUT = "tok_timeout"


class PaymentsSettings(ServiceSettings):
    # Added to every charge, to make the network's latency visible.
    payments_latency_ms: int = Field(default=50, ge=0, le=60_000)
    # Share of charges that fail with UNAVAILABLE before reaching the network.
    payments_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # How long "tok_timeout" hangs: longer than any caller waits.
    payments_timeout_seconds: float = Field(default=30.0, ge=0)


@dataclass(frozen=True)
class Outcome:
    approved: bool
    reason: str = ""


class Network:
    def __init__(self, settings: PaymentsSettings, rng: random.Random | None = None) -> None:
        self._settings = settings
        self._rng = rng or random.Random()

    async def authorize(self, card_token: str) -> Outcome:
        if self._rng.random() < self._settings.payments_failure_rate:
            raise Unavailable("payment network unavailable (injected)")
        await asyncio.sleep(self._settings.payments_latency_ms / 1000)
        if card_token == TIMEOUT:
            await asyncio.sleep(self._settings.payments_timeout_seconds)
            raise Unavailable("payment network timed out")
        if card_token == APPROVE:
            return Outcome(True)
        if card_token == DECLINE:
            return Outcome(False, "card declined")
        return Outcome(False, "unknown card")
