"""Cache-aside in Redis for protobuf reads, with a bounded TTL, explicit
invalidation, and hit/miss counters kept in Redis so the hit ratio is one
figure across every instance. Redis is an optimisation here: when it is down,
reads go to the database and the failure is logged, never surfaced.

Concurrent misses of one key in one instance share a single load: when a flash
sale invalidates a hot seat map with every hold, the crowd waiting for it costs
one database read, not one each. Concurrent reads of one key share one Redis
round trip the same way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from groundwork_shared.messages import Serialized
from groundwork_shared.metrics import CACHE_REQUESTS

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

# The read and its hit/miss count in one round trip (the read path is hot); ARGV
# adds the reads that shared an earlier round trip, not counted yet.
_GET_AND_COUNT = """
local value = redis.call('GET', KEYS[1])
local hits, misses = tonumber(ARGV[1]), tonumber(ARGV[2])
if value then hits = hits + 1 else misses = misses + 1 end
if hits > 0 then redis.call('INCRBY', KEYS[2], hits) end
if misses > 0 then redis.call('INCRBY', KEYS[3], misses) end
return value
"""


class Cache:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._get_and_count = redis.register_script(_GET_AND_COUNT)
        self._loading: dict[str, asyncio.Future[Message | None]] = {}
        self.joined = 0  # misses that waited for another caller's load instead of loading
        self._reading: dict[str, asyncio.Future[bytes | None]] = {}
        self.shared_reads = 0  # reads answered by another caller's round trip
        self._uncounted = {"hits": 0, "misses": 0}  # of those, not yet in Redis's counters

    def _key(self, key: str) -> str:
        return f"cache:{self._namespace}:{key}"

    async def get_or_load(
        self,
        key: str,
        message_type: type[M],
        ttl_seconds: int,
        load: Callable[[], Awaitable[M | None]],
    ) -> M | None:
        """The cached message, or `load()`'s result (cached when not None)."""
        found = await self.serialized_or_load(key, ttl_seconds, load)
        if isinstance(found, Serialized):
            try:
                return message_type.FromString(found.data)
            except DecodeError as error:
                log.warning("cache entry undecodable", extra={"error": repr(error)})
                return await self._load(key, ttl_seconds, load)  # and replace it
        return found

    async def serialized_or_load(
        self, key: str, ttl_seconds: int, load: Callable[[], Awaitable[M | None]]
    ) -> Serialized | M | None:
        """As get_or_load, but a hit stays in its wire form, unparsed: for a handler
        that returns the message whole (the server sends it as it is)."""
        try:
            raw = await self._read(key)
            if raw is not None:
                CACHE_REQUESTS.labels(self._namespace, "hit").inc()
                return Serialized(raw)
        except (RedisError, OSError) as error:
            log.warning("cache read failed", extra={"error": repr(error)})
        CACHE_REQUESTS.labels(self._namespace, "miss").inc()
        flight = self._loading.get(key)
        if flight is not None:
            self.joined += 1
            try:
                shared = await asyncio.shield(flight)
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # this caller was cancelled, not the load
                return await load()
            return shared  # type: ignore[return-value]  # the same key loads the same type
        return await self._load(key, ttl_seconds, load)

    async def _read(self, key: str) -> bytes | None:
        """The entry's bytes, or None. Concurrent readers of one key share the round
        trip in flight: a crowd on one hot event costs Redis one read per round trip,
        and each reader gets a value at most one round trip older than its call."""
        flight = self._reading.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key))
            self._reading[key] = flight
            flight.add_done_callback(partial(self._landed, key))
            return await asyncio.shield(flight)
        self.shared_reads += 1
        raw = await asyncio.shield(flight)
        self._uncounted["hits" if raw is not None else "misses"] += 1
        return raw

    async def _fetch(self, key: str) -> bytes | None:
        hits, misses = self._uncounted["hits"], self._uncounted["misses"]
        self._uncounted = {"hits": 0, "misses": 0}
        raw = await self._get_and_count(
            keys=[self._key(key), self._stat("hits"), self._stat("misses")], args=[hits, misses]
        )
        return raw if isinstance(raw, bytes) else None

    def _landed(self, key: str, flight: asyncio.Future[bytes | None]) -> None:
        if self._reading.get(key) is flight:
            del self._reading[key]
        if not flight.cancelled():
            flight.exception()  # retrieved, even when every reader was cancelled

    async def _load(
        self, key: str, ttl_seconds: int, load: Callable[[], Awaitable[M | None]]
    ) -> M | None:
        flight: asyncio.Future[Message | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = flight
        try:
            message = await load()
            flight.set_result(message)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except Exception as error:
            flight.set_exception(error)  # the waiters get the same error
            flight.exception()  # and it is not "never retrieved" when there are none
            raise
        finally:
            del self._loading[key]
        if message is not None:
            try:
                await self._redis.set(self._key(key), message.SerializeToString(), ex=ttl_seconds)
            except (RedisError, OSError) as error:
                log.warning("cache write failed", extra={"error": repr(error)})
        return message

    async def invalidate(self, *keys: str) -> None:
        try:
            await self._redis.delete(*(self._key(k) for k in keys))
        except (RedisError, OSError) as error:
            # The TTL bounds how long a stale entry can live.
            log.warning("cache invalidation failed", extra={"error": repr(error)})

    def _stat(self, outcome: str) -> str:
        return f"cache:{self._namespace}:stats:{outcome}"


async def hit_ratio(redis: Redis, namespace: str) -> tuple[int, int]:
    """(hits, misses) counted since the counters were created."""
    hits, misses = await redis.mget(
        f"cache:{namespace}:stats:hits", f"cache:{namespace}:stats:misses"
    )
    return int(hits or 0), int(misses or 0)
