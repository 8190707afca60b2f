"""Ticketing's settings (GROUNDWORK_TICKET_*)."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import ServiceSettings


class TicketingSettings(ServiceSettings):
    # PEM (PKCS#8) Ed25519 private key, base64-encoded to fit in one variable.
    ticket_signing_key: str = Field(default="", repr=False)
