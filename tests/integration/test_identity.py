"""Identity against real Postgres, through its real gRPC server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import jwt
import pytest
from cryptography.fernet import Fernet

from groundwork.identity.v1 import identity_pb2 as pb
from groundwork.identity.v1 import identity_pb2_grpc
from groundwork_cli.runtime import probes
from groundwork_identity import MIGRATIONS, SERVICE_NAME, passwords
from groundwork_identity.service import IdentityService
from groundwork_identity.settings import IdentitySettings
from groundwork_identity.workers import KeyRing, ensure_keys, load_keys
from groundwork_shared.migrations import migrate
from groundwork_shared.server import App, serve

PASSWORD = "a perfectly long password"


@pytest.fixture
async def identity(
    fresh_database: str,
) -> AsyncIterator[identity_pb2_grpc.IdentityServiceAsyncStub]:
    await migrate(fresh_database, Path(MIGRATIONS))
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=5)
    assert pool is not None
    listen = "127.78.4.1:50051"
    settings = IdentitySettings(
        instance_id="identity-test",
        grpc_listen=listen,
        shutdown_grace_seconds=1,
        key_encryption_key=Fernet.generate_key().decode(),
        database_url=fresh_database,
    )
    ring = KeyRing(pool, settings)
    await ring.refresh()
    service = IdentityService(pool, ring, settings)
    stop = asyncio.Event()
    app = App(
        [SERVICE_NAME],
        lambda s: identity_pb2_grpc.add_IdentityServiceServicer_to_server(service, s),
    )
    task = asyncio.create_task(serve(settings, app, stop))
    await probes.wait_until(probes.grpc_health(listen, SERVICE_NAME), 10, "identity")
    async with grpc.aio.insecure_channel(listen) as channel:
        yield identity_pb2_grpc.IdentityServiceStub(channel)
    stop.set()
    await task
    await pool.close()


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_signup_reveals_nothing_and_login_issues_verifiable_tokens(
    identity: identity_pb2_grpc.IdentityServiceAsyncStub,
) -> None:
    first = await identity.SignUp(pb.SignUpRequest(email="Ann@Example.com", password=PASSWORD))
    again = await identity.SignUp(pb.SignUpRequest(email="ann@example.com", password="x" * 20))
    assert first == again  # no way to tell that the second email was taken
    pair = await identity.Login(pb.LoginRequest(email=" ann@example.COM", password=PASSWORD))
    assert pair.token_type == "Bearer" and pair.refresh_token

    jwks = json.loads((await identity.GetJwks(pb.GetJwksRequest())).data)
    kid = jwt.get_unverified_header(pair.access_token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        pair.access_token,
        key,
        algorithms=["EdDSA"],
        audience="groundwork",
        issuer="https://groundwork.local",
    )
    assert claims["roles"] == ["user"]
    assert abs(claims["exp"] - time.time() - pair.expires_in) < 5


class _CountingHasher:
    """The real argon2 hasher, counting its verifications."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.verifications = 0

    def verify(self, stored: str, password: str) -> bool:
        self.verifications += 1
        return bool(self._real.verify(stored, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_login_failures_look_the_same(
    identity: identity_pb2_grpc.IdentityServiceAsyncStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same error, and the same work (one argon2id verification) whether the email
    exists or not: equal work rather than measured times, which a noisy machine blurs."""
    await identity.SignUp(pb.SignUpRequest(email="bob@example.com", password=PASSWORD))
    hasher = _CountingHasher(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    outcomes = []
    for email in ("bob@example.com", "nobody@example.com"):
        before = hasher.verifications
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await identity.Login(pb.LoginRequest(email=email, password="wrong password!!"))
        outcomes.append((info.value.code(), info.value.details(), hasher.verifications - before))
    assert (
        outcomes[0]
        == outcomes[1]
        == (grpc.StatusCode.UNAUTHENTICATED, "invalid email or password", 1)
    )


async def test_bad_signup_input_is_rejected_with_fields(
    identity: identity_pb2_grpc.IdentityServiceAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await identity.SignUp(pb.SignUpRequest(email="not-an-email", password="short"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "email" in (info.value.details() or "") and "password" in (info.value.details() or "")


async def test_refresh_rotates_and_reuse_revokes_the_family(
    identity: identity_pb2_grpc.IdentityServiceAsyncStub,
) -> None:
    await identity.SignUp(pb.SignUpRequest(email="cy@example.com", password=PASSWORD))
    first = await identity.Login(pb.LoginRequest(email="cy@example.com", password=PASSWORD))
    second = await identity.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    third = await identity.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token))
    # Replaying a spent token (a thief, or the victim after the thief) kills the family...
    replay = identity.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert await _code(replay) == grpc.StatusCode.UNAUTHENTICATED
    # ...including the newest token, which was never used.
    newest = identity.Refresh(pb.RefreshRequest(refresh_token=third.refresh_token))
    assert await _code(newest) == grpc.StatusCode.UNAUTHENTICATED
    # Another login is a new family and unaffected.
    other = await identity.Login(pb.LoginRequest(email="cy@example.com", password=PASSWORD))
    assert await identity.Refresh(pb.RefreshRequest(refresh_token=other.refresh_token))


async def test_concurrent_refreshes_of_one_token_yield_one_pair(
    identity: identity_pb2_grpc.IdentityServiceAsyncStub,
) -> None:
    await identity.SignUp(pb.SignUpRequest(email="dee@example.com", password=PASSWORD))
    pair = await identity.Login(pb.LoginRequest(email="dee@example.com", password=PASSWORD))
    codes = await asyncio.gather(
        *(
            _code(identity.Refresh(pb.RefreshRequest(refresh_token=pair.refresh_token)))
            for _ in range(8)
        )
    )
    assert codes.count(grpc.StatusCode.OK) == 1


async def test_logout_revokes(identity: identity_pb2_grpc.IdentityServiceAsyncStub) -> None:
    await identity.SignUp(pb.SignUpRequest(email="eve@example.com", password=PASSWORD))
    pair = await identity.Login(pb.LoginRequest(email="eve@example.com", password=PASSWORD))
    await identity.Logout(pb.LogoutRequest(refresh_token=pair.refresh_token))
    again = identity.Refresh(pb.RefreshRequest(refresh_token=pair.refresh_token))
    assert await _code(again) == grpc.StatusCode.UNAUTHENTICATED
    garbage = identity.Refresh(pb.RefreshRequest(refresh_token="made-up"))
    assert await _code(garbage) == grpc.StatusCode.UNAUTHENTICATED


async def test_key_rotation_keeps_old_tokens_verifiable(fresh_database: str) -> None:
    await migrate(fresh_database, Path(MIGRATIONS))
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    assert pool is not None
    kek = Fernet.generate_key().decode()
    day, ten = timedelta(days=1), timedelta(minutes=10)
    t0 = datetime.now(UTC) - timedelta(days=1, minutes=5)
    first = await ensure_keys(pool, kek, t0, day, ten)
    assert first is not None and await ensure_keys(pool, kek, t0, day, ten) is None
    second = await ensure_keys(pool, kek, t0 + day - ten, day, ten)
    assert second is not None and second.active_from == t0 + day
    stored = await load_keys(pool, kek)
    assert {k.kid for k in stored} == {first.kid, second.kid}
    raw = await pool.fetchval("SELECT private_key FROM signing_keys LIMIT 1")
    assert b"PRIVATE KEY" not in raw  # encrypted at rest
    await pool.close()
