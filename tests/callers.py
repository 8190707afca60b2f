"""The call context a service sees behind the edge: the verified user id and
token payload, as the edge's jwt_authn sets them (see groundwork_shared.caller)."""

from __future__ import annotations

import base64
import json
from typing import Any

from groundwork_shared.caller import CLAIMS_HEADER, USER_HEADER


def verified_metadata(user_id: str, roles: list[str]) -> tuple[tuple[str, str], ...]:
    """The call metadata the edge sets for a verified caller."""
    claims = base64.urlsafe_b64encode(json.dumps({"roles": roles}).encode()).decode()
    return ((USER_HEADER, user_id), (CLAIMS_HEADER, claims))


class _VerifiedCall:
    def __init__(self, user_id: str, roles: list[str]) -> None:
        self._metadata = verified_metadata(user_id, roles)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def verified(user_id: str, roles: list[str] | None = None) -> Any:
    """A servicer context carrying what the edge verified (typed Any: it stands in
    for grpc.aio.ServicerContext, of which services read only the metadata)."""
    return _VerifiedCall(user_id, ["user"] if roles is None else roles)
