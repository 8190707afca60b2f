"""Ticket tokens: compact JWTs signed with Ed25519, verifiable offline."""

from __future__ import annotations

import base64

from groundwork_shared.ed25519 import Signer, new_key_base64
from groundwork_ticketing.settings import TicketingSettings

VARIABLE = "GROUNDWORK_TICKET_SIGNING_KEY"


class TicketSigner(Signer):
    def __init__(self, pem: bytes) -> None:
        super().__init__(pem, "tickets", VARIABLE)

    @classmethod
    def from_settings(cls, settings: TicketingSettings) -> TicketSigner:
        if not settings.ticket_signing_key:
            raise SystemExit(f"{VARIABLE} is required")
        return cls(base64.b64decode(settings.ticket_signing_key))


def new_signing_key() -> str:
    """A fresh key in the form TicketingSettings expects."""
    return new_key_base64()
