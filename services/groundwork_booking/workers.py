"""Booking's background work: the sweeper that expires holds and unpaid orders."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from groundwork_booking import announcements, repository
from groundwork_booking.domain import HoldStatus
from groundwork_shared.telemetry import background
from groundwork_shared.transient import TRANSIENT

log = logging.getLogger(__name__)


async def sweep_once(pool: asyncpg.Pool, batch: int = 100) -> int:
    """Expire holds and unpaid orders past their time: free their seats, announce it."""
    async with pool.acquire() as conn, conn.transaction():
        expired = 0
        for hold_id in await repository.expired_holds(conn, batch):
            row = await repository.release(conn, hold_id, None, HoldStatus.EXPIRED)
            if row:
                await announcements.seats_released(conn, row, HoldStatus.EXPIRED)
                expired += 1
        for order in await repository.cancel_overdue_orders(conn, batch):
            await announcements.order_cancelled(conn, order, "payment deadline passed")
            expired += 1
        return expired


async def sweep(pool: asyncpg.Pool, stop: asyncio.Event, interval: float) -> None:
    with background():
        await _sweep_loop(pool, stop, interval)


async def _sweep_loop(pool: asyncpg.Pool, stop: asyncio.Event, interval: float) -> None:
    while not stop.is_set():
        try:
            await sweep_once(pool)
        except TRANSIENT as error:
            log.warning("hold sweep failed", extra={"error": repr(error)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
