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

# What every servicer method is handed (one name for all the services).
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Caller:
    user_id: str
    roles: frozenset[str]


def caller(context: Context) -> Caller:
    metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    user_id = metadata.get(USER_HEADER, "")
    if not user_id:
        raise Unauthenticated("no verified caller")
    try:
        encoded = metadata.get(CLAIMS_HEADER, "")
        claims = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        roles = frozenset(str(r) for r in claims.get("roles", []))
    except (ValueError, TypeError, AttributeError):
        roles = frozenset()
    return Caller(user_id, roles)


def require_role(context: Context, role: str) -> Caller:
    """Defence in depth: the edge's RBAC checked this already."""
    who = caller(context)
    if role not in who.roles:
        raise PermissionDenied(f"requires the {role} role")
    return who
