"""The rate limit service's settings (GROUNDWORK_RATELIMIT_*)."""

from __future__ import annotations

from pydantic import Field

from groundwork_shared.settings import ServiceSettings


class RateLimitSettings(ServiceSettings):
    # Per authenticated user, across every edge instance.
    ratelimit_user_per_minute: int = Field(default=600, ge=1)
    # Per client address on sign-up, login and refresh (password guessing).
    ratelimit_auth_per_minute: int = Field(default=30, ge=1)
