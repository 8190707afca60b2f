"""gRPC entrypoint of identity."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
from google.api import httpbody_pb2

from groundwork.identity.v1 import identity_pb2 as pb
from groundwork.identity.v1 import identity_pb2_grpc
from groundwork_identity import cookies, domain, passwords, repository, tokens
from groundwork_identity.domain import Rotation, RotationResult
from groundwork_identity.settings import IdentitySettings
from groundwork_identity.workers import KeyRing
from groundwork_shared.caller import Context, caller
from groundwork_shared.errors import InvalidArgument, Unauthenticated
from groundwork_shared.interceptors import add_response_headers

log = logging.getLogger(__name__)


class IdentityService(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, pool: asyncpg.Pool, ring: KeyRing, settings: IdentitySettings) -> None:
        self._pool = pool
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
        async with self._pool.acquire() as conn:
            await repository.create_account(conn, email, password_hash, list(domain.DEFAULT_ROLES))
        return pb.SignUpResponse(message=domain.SIGNED_UP)

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.TokenPair:
        email = passwords.normalize_email(request.email)
        async with self._pool.acquire() as conn:
            account = await repository.find_account(conn, email)
        # Verify outside the connection: hashing takes tens of milliseconds.
        ok = await passwords.verify_password(
            account.password_hash if account else None, request.password
        )
        if not ok or account is None:
            raise Unauthenticated("invalid email or password")
        new_hash = None
        if passwords.needs_rehash(account.password_hash):
            new_hash = await passwords.hash_password(request.password)
        refresh = tokens.new_refresh_token()
        async with self._pool.acquire() as conn:
            if new_hash is not None:
                await repository.update_password_hash(conn, account.account_id, new_hash)
            await repository.start_family(
                conn,
                tokens.refresh_token_hash(refresh),
                account.account_id,
                self._policy.refresh_ttl,
            )
        return _answer(context, self._pair(str(account.account_id), account.roles, refresh))

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.TokenPair:
        presented = _refresh_token(request.refresh_token, context)
        refresh = tokens.new_refresh_token()
        result = await self._rotate(
            tokens.refresh_token_hash(presented), tokens.refresh_token_hash(refresh)
        )
        if result.outcome is Rotation.REUSED:
            log.warning("refresh token reused: family revoked")
        if result.outcome is not Rotation.ROTATED:
            raise Unauthenticated("invalid refresh token")
        assert result.account_id is not None and result.roles is not None
        return _answer(context, self._pair(str(result.account_id), result.roles, refresh))

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        if cookies.wanted(context.invocation_metadata() or ()):
            # The browser forgets its session whatever happened to the refresh cookie.
            add_response_headers(*cookies.cleared())
            if not cookies.sent(context.invocation_metadata() or (), cookies.REFRESH):
                return pb.LogoutResponse()
        presented = _refresh_token(request.refresh_token, context)
        async with self._pool.acquire() as conn:
            await repository.revoke_family_of(conn, tokens.refresh_token_hash(presented))
        return pb.LogoutResponse()

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.Me:
        who = caller(context)
        return pb.Me(user_id=who.user_id, roles=sorted(who.roles))

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> httpbody_pb2.HttpBody:
        body = json.dumps(self._ring.jwks(), separators=(",", ":")).encode()
        return httpbody_pb2.HttpBody(content_type="application/json", data=body)

    async def _rotate(self, old_hash: bytes, new_hash: bytes) -> RotationResult:
        """Spend `old_hash` and issue `new_hash` in its family, in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            spent = await repository.spend(conn, old_hash)
            if spent is not None:
                await repository.continue_family(conn, new_hash, spent, self._policy.refresh_ttl)
                roles = await repository.roles_of(conn, spent.account_id)
                return RotationResult(Rotation.ROTATED, spent.account_id, roles)
            seen = await repository.seen(conn, old_hash)
            outcome = domain.refused(seen)
            if outcome is Rotation.REUSED:
                assert seen is not None
                await repository.revoke_family(conn, seen.family_id)
            return RotationResult(outcome)

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


def _refresh_token(in_body: str, context: Context) -> str:
    """The refresh token from the body, or from a browser session's cookie."""
    metadata = context.invocation_metadata() or ()
    presented = in_body or (
        cookies.sent(metadata, cookies.REFRESH) if cookies.wanted(metadata) else ""
    )
    if not presented:
        raise InvalidArgument.one("refresh_token", "required (or a browser session's cookie)")
    return presented


def _answer(context: Context, pair: pb.TokenPair) -> pb.TokenPair:
    """A browser session gets its tokens as cookies and a body without them."""
    if not cookies.wanted(context.invocation_metadata() or ()):
        return pair
    add_response_headers(*cookies.issued(pair))
    return cookies.without_tokens(pair)
