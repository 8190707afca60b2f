"""Redis client factory (cache and Streams bus share one server)."""

from __future__ import annotations

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    if not url:
        raise ValueError("GROUNDWORK_REDIS_URL is not set")
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
