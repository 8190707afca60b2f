"""Ids have one spelling. Every UUID an API takes is accepted only in its
canonical form, lowercase and hyphenated (RFC 9562's 8-4-4-4-12): Python's
uuid.UUID also takes upper case, braces, "urn:uuid:" and no hyphens, and
accepting those would give one id many spellings, so a decision made on one
spelling (a gate, a cache key, a topic, a log search) would miss another that a
service then acts on. No transport here: domain code uses it."""

from __future__ import annotations

import uuid

from groundwork_shared.errors import Violations

CANONICAL_UUID = "must be a UUID in canonical form (36 characters, lowercase hex, 8-4-4-4-12)"


def canonical_uuid(value: str) -> uuid.UUID | None:
    """The UUID `value` spells in the accepted form, or None."""
    if len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None


def canonical_or_violation(problems: Violations, field: str, value: str) -> uuid.UUID:
    """The UUID `value` spells, or the nil UUID with the violation added to
    `problems` (for rules that report every problem of a request at once)."""
    parsed = canonical_uuid(value)
    if parsed is None:
        problems.add(field, CANONICAL_UUID)
        return uuid.UUID(int=0)
    return parsed
