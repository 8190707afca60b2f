"""Redis client factory (cache and Streams bus share one server)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

# Connections per process. A burst of callers waits for one (up to the socket
# timeout) instead of failing with "Too many connections", as the default pool
# (100, then an error) made a crowd of WebSocket handshakes do.
MAX_CONNECTIONS = 100


def connect(url: str) -> Redis:
    if not url:
        raise ValueError("GROUNDWORK_REDIS_URL is not set")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes it
