"""The background loops outlive what a restarting database or broker throws at them:
each failure is logged and the loop tries again (a loop that died would stop
relaying or sweeping without a word)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from groundwork_booking import workers as booking_workers
from groundwork_shared.outbox import Relay

# What ci-43 saw from asyncpg 0.32's pool after a Postgres restart, and its cousins.
DATABASE_FAILURES = [
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    ConnectionRefusedError(111, "Connect call failed"),
]
BROKER_FAILURES = [RedisConnectionError("Connection refused")]


def _failing_then_stopping(
    stop: asyncio.Event, failure: BaseException
) -> tuple[Callable[..., Awaitable[int]], list[object]]:
    """An attempt that fails once, then stops the loop; and the record of its calls."""
    calls: list[object] = []

    async def attempt(*args: object) -> int:
        calls.append(args)
        if len(calls) == 1:
            raise failure
        stop.set()
        return 0

    return attempt, calls


@pytest.mark.parametrize(
    "failure", DATABASE_FAILURES + BROKER_FAILURES, ids=lambda f: type(f).__name__
)
async def test_the_relay_logs_a_failure_and_tries_again(
    failure: BaseException, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    attempt, calls = _failing_then_stopping(stop, failure)
    relay = Relay(pool=None, redis=None)  # type: ignore[arg-type]
    monkeypatch.setattr(relay, "run_once", attempt)
    await asyncio.wait_for(relay.run(stop, idle=0.01, max_backoff=0.01), 10)
    assert len(calls) == 2
    assert "outbox relay failed; retrying" in caplog.messages


@pytest.mark.parametrize("failure", DATABASE_FAILURES, ids=lambda f: type(f).__name__)
async def test_the_hold_sweeper_logs_a_failure_and_tries_again(
    failure: BaseException, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = asyncio.Event()
    attempt, calls = _failing_then_stopping(stop, failure)
    monkeypatch.setattr(booking_workers, "sweep_once", attempt)
    await asyncio.wait_for(booking_workers.sweep(None, stop, 0.01), 10)
    assert len(calls) == 2
    assert "hold sweep failed" in caplog.messages
