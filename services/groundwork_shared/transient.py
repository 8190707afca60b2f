"""What a worker's loop outlives (it logs, waits and tries again): the broker or the
database gone or restarting."""

from __future__ import annotations

import asyncpg
from redis.exceptions import RedisError

TRANSIENT: tuple[type[BaseException], ...] = (
    RedisError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,  # the connection closed under a query
    # asyncpg's pool can hand out a connection a restart left mid-operation ("cannot
    # switch to state 12; another operation is in progress", 0.32's floor upkeep).
    asyncpg.InternalClientError,
)
