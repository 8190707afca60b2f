"""Identity's rules and types, without I/O: accounts and refresh-token rotation.

The rest of the domain lives beside it, each a pure module of its own: `keys`
(signing keys and their rotation policy), `passwords` (credential rules and
hashing) and `tokens` (access and refresh tokens)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

SIGNED_UP = "if this email was not registered yet, the account now exists: log in"
DEFAULT_ROLES = ("user",)


@dataclass(frozen=True)
class Account:
    account_id: uuid.UUID
    email: str
    password_hash: str
    roles: list[str]


@dataclass(frozen=True)
class SpentToken:
    """A refresh token just spent: its family goes on with a new one."""

    family_id: uuid.UUID
    account_id: uuid.UUID


@dataclass(frozen=True)
class SeenToken:
    """A refresh token that could not be spent, as the database knows it."""

    family_id: uuid.UUID
    used_at: datetime | None


class Rotation(Enum):
    ROTATED = "rotated"
    REUSED = "reused"  # a used token came back: its family is now revoked
    INVALID = "invalid"  # unknown, expired or revoked


def refused(seen: SeenToken | None) -> Rotation:
    """Why a token that could not be spent was refused. A token spent once and
    presented again was copied: the whole family must go (RFC 9700, 4.14.2)."""
    if seen is not None and seen.used_at is not None:
        return Rotation.REUSED
    return Rotation.INVALID


@dataclass(frozen=True)
class RotationResult:
    outcome: Rotation
    account_id: uuid.UUID | None = None
    roles: list[str] | None = None
