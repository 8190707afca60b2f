"""A browser session's cookies (groundwork_identity/cookies.py): the tokens only in
httpOnly, Secure, SameSite=Strict cookies, the refresh token sent only to /v1/auth/,
a readable CSRF token, and a body without the tokens."""

from __future__ import annotations

from http.cookies import SimpleCookie

from groundwork.identity.v1 import identity_pb2 as pb
from groundwork_identity import cookies

PAIR = pb.TokenPair(
    access_token="a.b.c",
    token_type="Bearer",
    expires_in=600,
    refresh_token="r-token_1",
    refresh_expires_in=3600,
)


def _parsed(headers: list[tuple[str, str]]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for key, value in headers:
        assert key == "set-cookie"
        jar.load(value)
    return jar


def test_a_new_pair_is_three_cookies_and_a_body_without_tokens() -> None:
    jar = _parsed(cookies.issued(PAIR))
    assert jar["gw_access"].value == "a.b.c" and jar["gw_refresh"].value == "r-token_1"
    for name in ("gw_access", "gw_refresh", "gw_csrf"):
        assert jar[name]["secure"] and jar[name]["samesite"] == "Strict"
    assert jar["gw_access"]["httponly"] and jar["gw_refresh"]["httponly"]
    assert not jar["gw_csrf"]["httponly"]
    assert jar["gw_refresh"]["path"] == "/v1/auth/" and jar["gw_access"]["path"] == "/"
    assert jar["gw_access"]["max-age"] == "600" and jar["gw_refresh"]["max-age"] == "3600"
    assert len(jar["gw_csrf"].value) >= 32
    assert jar["gw_csrf"].value != _parsed(cookies.issued(PAIR))["gw_csrf"].value
    body = cookies.without_tokens(PAIR)
    assert body.access_token == "" and body.refresh_token == "" and body.expires_in == 600


def test_logging_out_expires_every_cookie() -> None:
    jar = _parsed(cookies.cleared())
    assert set(jar) == {"gw_access", "gw_refresh", "gw_csrf"}
    assert all(morsel["max-age"] == "0" for morsel in jar.values())


def test_the_refresh_cookie_is_read_only_from_a_cookie_session() -> None:
    metadata = [("cookie", "theme=dark; gw_refresh=r-token_1; gw_csrf=x"), ("x-other", "1")]
    assert cookies.sent(metadata, "gw_refresh") == "r-token_1"
    assert cookies.sent(metadata, "gw_access") == ""
    assert cookies.sent([("cookie", '"unterminated')], "gw_refresh") == ""
    assert not cookies.wanted(metadata)
    assert cookies.wanted([*metadata, ("x-groundwork-session", "cookie")])
