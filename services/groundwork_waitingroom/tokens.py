"""Admission tokens: EdDSA JWTs with the waiting room's own key, issuer and
audience, naming the customer (sub) and the event; they expire with the session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from groundwork_shared.ed25519 import Signer


@dataclass(frozen=True)
class Issuer:
    signer: Signer
    issuer: str
    audience: str


def admission_token(
    issuer: Issuer, user: str, event_id: str, now: datetime, until: datetime
) -> str:
    return issuer.signer.sign(
        {
            "iss": issuer.issuer,
            "aud": issuer.audience,
            "sub": user,
            "event": event_id,
            "iat": int(now.timestamp()),
            "exp": int(until.timestamp()),
            "jti": str(uuid.uuid4()),
        }
    )
