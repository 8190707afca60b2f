"""Rate limits on a mesh of their own (127.80.x.y) with low limits: the edge's
per-client token bucket, the global per-user and per-client limits from the
ratelimit service, and failing open when Redis is down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from groundwork_cli.runtime import supervisor
from tests.conftest import eventually
from tests.e2e.conftest import PASSWORD, Mesh, make_mesh


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    mesh = make_mesh(tmp_path_factory.mktemp("limited"), 80)
    mesh.env.update(
        GROUNDWORK_EDGE_CLIENT_RPS="5",
        GROUNDWORK_EDGE_CLIENT_BURST="20",
        GROUNDWORK_RATELIMIT_USER_PER_MINUTE="10",
        GROUNDWORK_RATELIMIT_AUTH_PER_MINUTE="5",
    )
    with mesh.running():
        yield mesh


def _token(mesh: Mesh, client: httpx.Client, email: str) -> str:
    client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    reply = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def _in_one_window(seconds: float = 20) -> None:
    """The global limits count in fixed one-minute windows (limits.window_key): a
    run that straddles a minute counts in two windows and is never limited. Start
    with at least `seconds` of the current window left."""
    left = 60 - time.time() % 60
    if left < seconds:
        time.sleep(left + 0.05)


def test_per_client_token_bucket(limited: Mesh) -> None:
    async def burst() -> list[httpx.Response]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=limited.http, transport=transport) as client:
            return await asyncio.gather(
                *(client.get("/v1/events", params={"page_size": 1}) for _ in range(60))
            )

    replies = asyncio.run(burst())
    codes = [r.status_code for r in replies]
    assert 15 <= codes.count(200) <= 30, codes  # the burst of 20, plus a refill or two
    limited_reply = next(r for r in replies if r.status_code == 429)
    assert limited_reply.headers["retry-after"] == "1"
    assert limited_reply.headers["content-type"] == "application/json"
    assert "x-ratelimit-limit" in limited_reply.headers
    # The bucket refills: the same client is served again (retry-after: 1).
    with limited.client_from("127.0.0.2") as same:
        eventually(
            lambda: same.get("/v1/events", params={"page_size": 1}).status_code == 200,
            timeout=5,
            interval=0.25,
        )
    # Another address is unaffected.
    with limited.client_from("127.0.0.9") as other:
        assert other.get("/v1/events", params={"page_size": 1}).status_code == 200


def test_global_limit_per_user(limited: Mesh) -> None:
    """Counted across connections (and client addresses): the count lives in Redis."""
    with limited.client_from("127.0.0.3") as one, limited.client_from("127.0.0.6") as two:
        token = _token(limited, one, "limited-user@example.com")
        headers = {"authorization": f"Bearer {token}"}
        _in_one_window()
        codes = [
            (one if n % 2 else two).get("/v1/me", headers=headers).status_code for n in range(12)
        ]
        assert codes == [200] * 10 + [429] * 2
        over = one.get("/v1/me", headers=headers)
        assert over.status_code == 429
        assert over.headers["content-type"] == "application/json"
        assert 0 < int(over.headers["retry-after"]) <= 60
        assert 'name="per_user"' in over.headers["x-ratelimit-limit"]
        assert over.headers["x-ratelimit-remaining"].startswith("0")  # then the local bucket
        # Public reads are not counted against the user.
        assert one.get("/v1/events", params={"page_size": 1}).status_code == 200


def test_global_limit_on_login_attempts_per_client(limited: Mesh) -> None:
    with limited.client_from("127.0.0.4") as client:
        _in_one_window()
        codes = [
            client.post(
                "/v1/auth/login", json={"email": "nobody@example.com", "password": "guess guess 1"}
            ).status_code
            for _ in range(7)
        ]
    assert codes == [401] * 5 + [429] * 2


def test_fails_open_when_redis_is_down(limited: Mesh) -> None:
    rpc = supervisor.client(limited.plan.layout)
    with limited.client_from("127.0.0.5") as client:
        token = _token(limited, client, "open-user@example.com")
        rpc.stopProcess("redis", True)
        try:
            reply = client.get("/v1/me", headers={"authorization": f"Bearer {token}"})
            assert reply.status_code == 200, reply.text
        finally:
            rpc.startProcess("redis", True)
