"""Admission tokens: EdDSA JWTs with the waiting room's own key, issuer and
audience, naming the customer (sub) and the event; they expire with the session."""

from __future__ import annotations

import uuid
from datetime import datetime

from groundwork_shared.ed25519 import Signer
from groundwork_waitingroom import AUDIENCE, ISSUER


def admission_token(
    signer: Signer, user: str, event_id: str, now: datetime, until: datetime
) -> str:
    return signer.sign(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user,
            "event": event_id,
            "iat": int(now.timestamp()),
            "exp": int(until.timestamp()),
            "jti": str(uuid.uuid4()),
        }
    )
