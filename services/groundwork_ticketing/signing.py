"""Ticket tokens: compact JWTs signed with Ed25519, verifiable offline."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field

from groundwork_shared import ed25519
from groundwork_shared.settings import ServiceSettings

ISSUER = "groundwork-ticketing"


class TicketingSettings(ServiceSettings):
    # PEM (PKCS#8) Ed25519 private key, base64-encoded to fit in one variable.
    ticket_signing_key: str = Field(default="", repr=False)


class TicketSigner:
    def __init__(self, pem: bytes) -> None:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("GROUNDWORK_TICKET_SIGNING_KEY must be an Ed25519 key")
        self._key = key
        self.kid = f"tickets-{ed25519.public_x(key)[:8]}"
        self.jwk: dict[str, Any] = ed25519.public_jwk(key, self.kid)

    @classmethod
    def from_settings(cls, settings: TicketingSettings) -> TicketSigner:
        if not settings.ticket_signing_key:
            raise SystemExit("GROUNDWORK_TICKET_SIGNING_KEY is required")
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
        claims = {
            "iss": ISSUER,
            "sub": holder,
            "jti": ticket_id,
            "order": order_id,
            "event": event_id,
            "seat": seat_id,
            "iat": int(issued_at.timestamp()),
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})


def new_signing_key() -> str:
    """A fresh key in the form TicketingSettings expects."""
    return base64.b64encode(ed25519.private_pem(Ed25519PrivateKey.generate())).decode()
