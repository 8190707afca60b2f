"""The catalog's own settings."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    # max-age of an event, its availability and its seat map: how long the edge's
    # micro-cache (and a browser) may reuse one. A crowd then costs one upstream read per
    # edge per interval; 0 turns caching of them off.
    availability_cache_seconds: int = Field(default=1, ge=0, le=60)
    # max-age of the unversioned layout URL (the versioned one is immutable).
    layout_cache_seconds: int = Field(default=60, ge=0, le=86400)
    # How long a read waits on the cache before it goes to Postgres instead: a Redis
    # that stops answering (frozen, partitioned) costs a read this, not seconds.
    cache_timeout_seconds: float = Field(default=0.5, gt=0, le=10)
