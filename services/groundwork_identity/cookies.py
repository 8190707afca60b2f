"""A browser's session: the token pair in cookies its scripts cannot read.

A client that sends `x-groundwork-session: cookie` (the web front end) gets the
access token and the refresh token as httpOnly, Secure, SameSite=Strict cookies and
a body without them, so a script injected into the page has no token to steal.
gw_csrf is the one cookie scripts may read: the edge refuses a cookie-authenticated
write whose x-groundwork-csrf header does not repeat it (double submit). The edge's
jwt_authn reads gw_access; gw_refresh is sent only to /v1/auth/ (its Path)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from http.cookies import SimpleCookie

from groundwork.identity.v1 import identity_pb2 as pb

SESSION_HEADER = "x-groundwork-session"
ACCESS = "gw_access"
REFRESH = "gw_refresh"
CSRF = "gw_csrf"
REFRESH_PATH = "/v1/auth/"


def wanted(metadata: Iterable[tuple[str, str | bytes]]) -> bool:
    return any(key == SESSION_HEADER and value == "cookie" for key, value in metadata)


def sent(metadata: Iterable[tuple[str, str | bytes]], name: str) -> str:
    """The value of cookie `name` in the request's Cookie headers ('' if absent)."""
    jar: SimpleCookie = SimpleCookie()
    for key, value in metadata:
        if key == "cookie" and isinstance(value, str):
            try:
                jar.load(value)
            except Exception:  # a malformed Cookie header holds no session
                continue
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def _cookie(name: str, value: str, max_age: int, path: str, http_only: bool) -> tuple[str, str]:
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = path
    morsel["max-age"] = max_age
    morsel["secure"] = True
    morsel["samesite"] = "Strict"
    morsel["httponly"] = http_only
    return "set-cookie", morsel.OutputString()


def issued(pair: pb.TokenPair) -> list[tuple[str, str]]:
    """Set-Cookie headers for a new token pair (and a new CSRF token)."""
    return [
        _cookie(ACCESS, pair.access_token, pair.expires_in, "/", http_only=True),
        _cookie(REFRESH, pair.refresh_token, pair.refresh_expires_in, REFRESH_PATH, True),
        # As long-lived as the refresh cookie: it guards the refresh as well.
        _cookie(CSRF, secrets.token_urlsafe(24), pair.refresh_expires_in, "/", http_only=False),
    ]


def cleared() -> list[tuple[str, str]]:
    """Set-Cookie headers that end the session in the browser."""
    return [
        _cookie(ACCESS, "", 0, "/", http_only=True),
        _cookie(REFRESH, "", 0, REFRESH_PATH, http_only=True),
        _cookie(CSRF, "", 0, "/", http_only=False),
    ]


def without_tokens(pair: pb.TokenPair) -> pb.TokenPair:
    """The body a cookie session gets: the lifetimes, not the tokens."""
    return pb.TokenPair(
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        refresh_expires_in=pair.refresh_expires_in,
    )
