"""Who is calling, as the edge verified it. The edge strips these headers from
every request and sets them only from a valid access token; a service is
reachable only over mTLS from its allowed callers, so it can trust them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import grpc

from groundwork_shared.errors import PermissionDenied, Unauthenticated

USER_HEADER = "x-groundwork-user-id"
# The verified token payload, base64url-encoded JSON (jwt_authn's forward_payload_header).
CLAIMS_HEADER = "x-groundwork-claims"
# A verified admission token's payload, the same way (the waiting room's tokens).
ADMISSION_HEADER = "x-groundwork-admission-claims"

# What every servicer method is handed (one name for all the services).
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Caller:
    user_id: str
    roles: frozenset[str]


def _metadata(context: Context) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _payload(encoded: str) -> dict[str, Any] | None:
    """A verified token's payload as jwt_authn forwards it (base64url JSON), or
    None when absent or not a JSON object."""
    if not encoded:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def caller(context: Context) -> Caller:
    metadata = _metadata(context)
    user_id = metadata.get(USER_HEADER, "")
    if not user_id:
        raise Unauthenticated("no verified caller")
    claims = _payload(metadata.get(CLAIMS_HEADER, "")) or {}
    listed = claims.get("roles", [])
    roles = frozenset(str(r) for r in listed) if isinstance(listed, list) else frozenset()
    return Caller(user_id, roles)


def admission_claims(context: Context) -> tuple[str, str] | None:
    """(sub, event) of the admission token the edge verified for this call (its
    signature, issuer, audience and expiry), or None when none came."""
    claims = _payload(_metadata(context).get(ADMISSION_HEADER, ""))
    if claims is None:
        return None
    sub, event = claims.get("sub"), claims.get("event")
    return (sub, event) if isinstance(sub, str) and isinstance(event, str) else None


def require_role(context: Context, role: str) -> Caller:
    """Defence in depth: the edge's RBAC checked this already."""
    who = caller(context)
    if role not in who.roles:
        raise PermissionDenied(f"requires the {role} role")
    return who
