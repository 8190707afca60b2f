"""gRPC entrypoint of identity."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api import httpbody_pb2

from groundwork.identity.v1 import identity_pb2 as pb
from groundwork.identity.v1 import identity_pb2_grpc
from groundwork_identity import keys, passwords, tokens
from groundwork_identity.repository import IdentityRepository, Rotation
from groundwork_identity.settings import IdentitySettings
from groundwork_shared.caller import Context, caller
from groundwork_shared.errors import InvalidArgument, Unauthenticated, Unavailable
from groundwork_shared.telemetry import background

log = logging.getLogger(__name__)

SIGNED_UP = "if this email was not registered yet, the account now exists: log in"


class KeyRing:
    """Signing keys, loaded from the database and refreshed in the background."""

    def __init__(self, repository: IdentityRepository, settings: IdentitySettings) -> None:
        self._repository = repository
        self._settings = settings
        self._keys: list[keys.SigningKey] = []

    async def refresh(self) -> None:
        s = self._settings
        created = await self._repository.ensure_keys(
            s.key_encryption_key,
            datetime.now(UTC),
            timedelta(seconds=s.key_rotation_seconds),
            timedelta(seconds=s.key_prepublish_seconds),
        )
        if created:
            log.info(
                "signing key created",
                extra={"kid": created.kid, "active_from": created.active_from.isoformat()},
            )
        self._keys = await self._repository.load_keys(s.key_encryption_key)

    async def watch(self, stop: asyncio.Event, interval: float = 30) -> None:
        with background():
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
                    return
                try:
                    await self.refresh()
                except Exception:
                    log.exception("signing key refresh failed")

    def signing_key(self) -> keys.SigningKey:
        key = keys.current(self._keys, datetime.now(UTC))
        if key is None:
            raise Unavailable("no signing key yet")
        return key

    def jwks(self) -> dict[str, Any]:
        ttl = timedelta(seconds=self._settings.access_token_seconds)
        return {"keys": [k.public_jwk for k in keys.published(self._keys, datetime.now(UTC), ttl)]}


class IdentityService(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(
        self, repository: IdentityRepository, ring: KeyRing, settings: IdentitySettings
    ) -> None:
        self._repository = repository
        self._ring = ring
        self._policy = tokens.TokenPolicy(
            settings.jwt_issuer,
            settings.jwt_audience,
            timedelta(seconds=settings.access_token_seconds),
            timedelta(seconds=settings.refresh_token_seconds),
        )

    async def SignUp(self, request: pb.SignUpRequest, context: Context) -> pb.SignUpResponse:
        email = passwords.normalize_email(request.email)
        passwords.validate_credentials(email, request.password)
        # Hash whether or not the account exists: the same work, the same reply.
        password_hash = await passwords.hash_password(request.password)
        await self._repository.create_account(email, password_hash, ["user"])
        return pb.SignUpResponse(message=SIGNED_UP)

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.TokenPair:
        email = passwords.normalize_email(request.email)
        account = await self._repository.find_account(email)
        ok = await passwords.verify_password(
            account.password_hash if account else None, request.password
        )
        if not ok or account is None:
            raise Unauthenticated("invalid email or password")
        if passwords.needs_rehash(account.password_hash):
            new_hash = await passwords.hash_password(request.password)
            await self._repository.update_password_hash(account.account_id, new_hash)
        refresh = tokens.new_refresh_token()
        await self._repository.start_family(
            tokens.refresh_token_hash(refresh), account.account_id, self._policy.refresh_ttl
        )
        return self._pair(str(account.account_id), account.roles, refresh)

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.TokenPair:
        if not request.refresh_token:
            raise InvalidArgument.one("refresh_token", "required")
        refresh = tokens.new_refresh_token()
        result = await self._repository.rotate(
            tokens.refresh_token_hash(request.refresh_token),
            tokens.refresh_token_hash(refresh),
            self._policy.refresh_ttl,
        )
        if result.outcome is Rotation.REUSED:
            log.warning("refresh token reused: family revoked")
        if result.outcome is not Rotation.ROTATED:
            raise Unauthenticated("invalid refresh token")
        assert result.account_id is not None and result.roles is not None
        return self._pair(str(result.account_id), result.roles, refresh)

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        if not request.refresh_token:
            raise InvalidArgument.one("refresh_token", "required")
        await self._repository.revoke_family_of(tokens.refresh_token_hash(request.refresh_token))
        return pb.LogoutResponse()

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.Me:
        who = caller(context)
        return pb.Me(user_id=who.user_id, roles=sorted(who.roles))

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> httpbody_pb2.HttpBody:
        body = json.dumps(self._ring.jwks(), separators=(",", ":")).encode()
        return httpbody_pb2.HttpBody(content_type="application/json", data=body)

    def _pair(self, subject: str, roles: list[str], refresh: str) -> pb.TokenPair:
        now = datetime.now(UTC)
        access = tokens.access_token(self._ring.signing_key(), self._policy, subject, roles, now)
        return pb.TokenPair(
            access_token=access,
            token_type="Bearer",
            expires_in=int(self._policy.access_ttl.total_seconds()),
            refresh_token=refresh,
            refresh_expires_in=int(self._policy.refresh_ttl.total_seconds()),
        )
