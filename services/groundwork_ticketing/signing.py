"""Ticket tokens: compact JWTs signed with Ed25519, verifiable offline."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import Field

from groundwork_shared.ed25519 import Signer, new_key_base64
from groundwork_shared.settings import ServiceSettings

ISSUER = "groundwork-ticketing"
VARIABLE = "GROUNDWORK_TICKET_SIGNING_KEY"


class TicketingSettings(ServiceSettings):
    # PEM (PKCS#8) Ed25519 private key, base64-encoded to fit in one variable.
    ticket_signing_key: str = Field(default="", repr=False)


class TicketSigner(Signer):
    def __init__(self, pem: bytes) -> None:
        super().__init__(pem, "tickets", VARIABLE)

    @classmethod
    def from_settings(cls, settings: TicketingSettings) -> TicketSigner:
        if not settings.ticket_signing_key:
            raise SystemExit(f"{VARIABLE} is required")
        return cls(base64.b64decode(settings.ticket_signing_key))

    def token(
        self,
        *,
        ticket_id: str,
        order_id: str,
        event_id: str,
        seat_id: str,
        holder: str,
        issued_at: datetime,
    ) -> str:
        return self.sign(
            {
                "iss": ISSUER,
                "sub": holder,
                "jti": ticket_id,
                "order": order_id,
                "event": event_id,
                "seat": seat_id,
                "iat": int(issued_at.timestamp()),
            }
        )


def new_signing_key() -> str:
    """A fresh key in the form TicketingSettings expects."""
    return new_key_base64()
