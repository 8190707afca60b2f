"""Signing keys (Ed25519) and their rotation policy, without I/O.

A key signs from its `active_from` until the next key's. It is published in the
JWKS from its creation (before it signs, so caches already hold it when the
first token arrives) until every token it signed has expired."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from groundwork_shared import ed25519

CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]
    active_from: datetime


def new_key(active_from: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = f"{active_from:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    return SigningKey(
        kid, ed25519.private_pem(private), ed25519.public_jwk(private, kid), active_from
    )


def encrypt(kek: str, pem: bytes) -> bytes:
    return Fernet(kek.encode()).encrypt(pem)


def decrypt(kek: str, blob: bytes) -> bytes:
    return Fernet(kek.encode()).decrypt(blob)


def current(keys: list[SigningKey], now: datetime) -> SigningKey | None:
    """The key that signs now: the newest already active."""
    active = [k for k in keys if k.active_from <= now]
    return max(active, key=lambda k: k.active_from) if active else None


def published(keys: list[SigningKey], now: datetime, token_ttl: timedelta) -> list[SigningKey]:
    """Keys in the JWKS: all but those whose last token has certainly expired."""
    ordered = sorted(keys, key=lambda k: k.active_from)
    result = []
    for key, successor in zip(ordered, [*ordered[1:], None], strict=True):
        retired_at = successor.active_from if successor else None
        if retired_at is None or retired_at + token_ttl + CLOCK_SKEW > now:
            result.append(key)
    return result


def next_activation(
    keys: list[SigningKey], now: datetime, rotation: timedelta, prepublish: timedelta
) -> datetime | None:
    """When the next key must start signing, if one must be created now; else None."""
    if not keys:
        return now  # bootstrap: nothing can be verified until a key exists
    if any(k.active_from > now for k in keys):
        return None  # the next key is already published
    signing = current(keys, now)
    assert signing is not None
    due = signing.active_from + rotation
    if due - prepublish <= now:
        return max(due, now + prepublish)
    return None
