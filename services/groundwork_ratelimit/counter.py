"""Fixed-window counters in Redis: one atomic INCRBY per descriptor per request
(MULTI/EXEC with the expiry), so concurrent edges and instances never both get
the last token."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from groundwork_ratelimit.limits import Decision, Limit, window_key


class Counter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, domain: str, identity: str, limit: Limit, hits: int = 1) -> Decision:
        key, reset_in = window_key(domain, identity, limit, time.time())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, hits)
            pipe.expire(key, limit.window + 1, nx=True)
            count, _ = await pipe.execute()
        return Decision(limit, int(count), reset_in)
