"""Access tokens (JWT, EdDSA) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from groundwork_identity.keys import SigningKey


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    audience: str
    access_ttl: timedelta
    refresh_ttl: timedelta


def access_token(
    key: SigningKey, policy: TokenPolicy, subject: str, roles: list[str], now: datetime
) -> str:
    claims = {
        "iss": policy.issuer,
        "aud": policy.audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + policy.access_ttl).timestamp()),
        "jti": str(uuid.uuid4()),
        "roles": roles,
    }
    return jwt.encode(claims, key.private_pem, algorithm="EdDSA", headers={"kid": key.kid})


def new_refresh_token() -> str:
    """256 bits from the OS's CSPRNG; only its hash is stored."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> bytes:
    # A fast hash is right here: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode()).digest()
