"""Shared test helpers. Each level has its own conftest with the real
dependencies it needs: integration starts Postgres, e2e starts the whole mesh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout: float = 20,
    interval: float = 0.2,
    errors: tuple[type[Exception], ...] = (),
) -> T:
    """Retry `check` until it stops raising AssertionError (or one of `errors`:
    a refused connection while a server starts) and returns anything but False."""
    retried: tuple[type[Exception], ...] = (AssertionError, *errors)
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is not False:
                return result
            raise AssertionError("check returned False")
        except retried:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


async def settles(
    check: Callable[[], Awaitable[T]], timeout: float = 20, interval: float = 0.2
) -> T:
    """`eventually` for a coroutine check, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)
