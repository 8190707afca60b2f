"""Password hashing with argon2id at OWASP's recommended parameters
(m=19 MiB, t=2, p=1), and checks that take the same time whether or not the
account exists."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from groundwork_shared.errors import Violations

MIN_PASSWORD = 12
MAX_PASSWORD = 128
MAX_EMAIL = 254

# OWASP's minimum for argon2id: 2 passes over 19 MiB, one lane.
TIME_COST, MEMORY_KIB = 2, 19 * 1024
_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=1)
# Verified against when the email is unknown, so that path costs one argon2 run too.
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_credentials(email: str, password: str) -> None:
    problems = Violations()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain.strip(".") or any(c.isspace() for c in email):
        problems.add("email", "not an email address")
    elif len(email) > MAX_EMAIL:
        problems.add("email", f"at most {MAX_EMAIL} characters")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problems.add("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    problems.raise_if_any()


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant work: an unknown account still costs one verification."""

    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
