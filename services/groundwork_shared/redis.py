"""Redis client factory (cache and Streams bus share one server)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

# Connections per process. A burst of callers waits for one (up to the socket
# timeout) instead of failing with "Too many connections", as the default pool
# (100, then an error) made a crowd of WebSocket handshakes do.
MAX_CONNECTIONS = 100


def connect(url: str, timeout: float = 5) -> Redis:
    """`timeout` bounds each command and the wait for a free connection (above the
    bus's blocking reads, 1 s, for a client that consumes streams)."""
    if not url:
        raise ValueError("GROUNDWORK_REDIS_URL is not set")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=min(2, timeout),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes it
