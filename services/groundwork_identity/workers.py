"""Identity's background work: the key ring that creates, loads and refreshes
signing keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from groundwork_identity import keys, repository
from groundwork_identity.settings import IdentitySettings
from groundwork_shared.errors import Unavailable
from groundwork_shared.telemetry import background

log = logging.getLogger(__name__)


async def ensure_keys(
    pool: asyncpg.Pool, kek: str, now: datetime, rotation: timedelta, prepublish: timedelta
) -> keys.SigningKey | None:
    """Create the next signing key when the policy says so. Returns it, if any.
    Instances starting together take turns on a lock, so one key is made."""
    async with pool.acquire() as conn, conn.transaction():
        await repository.lock_keys(conn)
        activation = keys.next_activation(
            await repository.key_schedule(conn), now, rotation, prepublish
        )
        if activation is None:
            return None
        key = keys.new_key(activation)
        await repository.insert_key(conn, kek, key)
        return key


async def load_keys(pool: asyncpg.Pool, kek: str) -> list[keys.SigningKey]:
    async with pool.acquire() as conn:
        return await repository.load_keys(conn, kek)


class KeyRing:
    """Signing keys, loaded from the database and refreshed in the background."""

    def __init__(self, pool: asyncpg.Pool, settings: IdentitySettings) -> None:
        self._pool = pool
        self._settings = settings
        self._keys: list[keys.SigningKey] = []

    async def refresh(self) -> None:
        s = self._settings
        created = await ensure_keys(
            self._pool,
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
        self._keys = await load_keys(self._pool, s.key_encryption_key)

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
