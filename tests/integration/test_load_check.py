"""The correctness check after a load, on real booking and ticketing databases: a
clean state passes; each kind of corruption is named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from groundwork_booking import MIGRATIONS as BOOKING
from groundwork_loadtest.check import check
from groundwork_shared.database import database_url, ensure_database
from groundwork_shared.migrations import migrate
from groundwork_ticketing import MIGRATIONS as TICKETING

EVENT = str(uuid.uuid4())


async def _databases(postgres_server: str) -> tuple[str, str]:
    urls = []
    for migrations in (BOOKING, TICKETING):
        name = f"t_{uuid.uuid4().hex[:12]}"
        await ensure_database(postgres_server, name)
        urls.append(database_url(postgres_server, name))
        await migrate(urls[-1], Path(migrations))
    return urls[0], urls[1]


async def _sale(booking: str, ticketing: str, seat: str, status: str, tickets: bool) -> str:
    """A hold converted into an order of `seat` in `status`; returns the order id."""
    hold, order = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    conn = await asyncpg.connect(booking)
    try:
        await conn.execute(
            "INSERT INTO holds (hold_id, user_id, event_id, seat_ids, status, expires_at)"
            " VALUES ($1, 'u', $2, $3, 'converted', $4)",
            hold,
            uuid.UUID(EVENT),
            [seat],
            now + timedelta(minutes=5),
        )
        await conn.execute(
            "INSERT INTO seats (event_id, seat_id, price_cents, currency, state, hold_id)"
            " VALUES ($1, $2, 100, 'EUR', 'sold', $3)"
            " ON CONFLICT (event_id, seat_id) DO NOTHING",
            uuid.UUID(EVENT),
            seat,
            hold,
        )
        await conn.execute(
            "INSERT INTO orders (order_id, hold_id, user_id, event_id, seat_ids, amount_cents,"
            " currency, status, pay_by) VALUES ($1, $2, 'u', $3, $4, 100, 'EUR', $5, $6)",
            order,
            hold,
            uuid.UUID(EVENT),
            [seat],
            status,
            now + timedelta(minutes=15),
        )
    finally:
        await conn.close()
    if tickets:
        await _ticket(ticketing, str(order), seat)
    return str(order)


async def _ticket(ticketing: str, order: str, seat: str) -> None:
    conn = await asyncpg.connect(ticketing)
    try:
        await conn.execute(
            "INSERT INTO tickets (ticket_id, order_id, user_id, event_id, seat_id, token)"
            " VALUES ($1, $2, 'u', $3, $4, 't')",
            uuid.uuid4(),
            order,
            EVENT,
            seat,
        )
    finally:
        await conn.close()


async def test_a_consistent_state_passes(postgres_server: str) -> None:
    booking, ticketing = await _databases(postgres_server)
    await _sale(booking, ticketing, "A-R01-001", "paid", tickets=True)
    await _sale(booking, ticketing, "A-R01-002", "pending_payment", tickets=False)
    report = await check(booking, ticketing, settle=0)
    assert report.ok, report.violations
    assert report.figures["paid_orders"] == 1 and report.figures["tickets"] == 1
    assert report.figures["holds"]["converted"]["count"] == 2


async def test_double_sales_missing_tickets_and_stale_holds_are_named(
    postgres_server: str,
) -> None:
    booking, ticketing = await _databases(postgres_server)
    first = await _sale(booking, ticketing, "A-R01-001", "paid", tickets=True)
    second = await _sale(booking, ticketing, "A-R01-001", "paid", tickets=False)  # sold twice
    unpaid = await _sale(booking, ticketing, "A-R01-003", "pending_payment", tickets=False)
    await _ticket(ticketing, unpaid, "A-R01-003")  # a ticket nobody paid for
    await _ticket(ticketing, second, "A-R01-001")  # a second ticket for the same seat
    conn = await asyncpg.connect(booking)
    try:
        stale = await conn.fetchval(
            "INSERT INTO holds (hold_id, user_id, event_id, seat_ids, expires_at)"
            " VALUES (gen_random_uuid(), 'u', $1, '{A-R02-001}', now() - interval '10 minutes')"
            " RETURNING hold_id::text",
            uuid.UUID(EVENT),
        )
    finally:
        await conn.close()

    report = await check(booking, ticketing, settle=1)
    text = "\n".join(report.violations)
    assert not report.ok
    assert f"seat A-R01-001 of event {EVENT} sold in orders" in text
    assert first in text and second in text
    assert f"paid order {second}: seat A-R01-001 is sold under another hold" in text
    assert f"hold {stale} still active" in text
    assert f"ticket for order {unpaid}, which is not paid" in text
    assert f"seat A-R01-001 of event {EVENT} has tickets from orders" in text


async def test_tickets_still_on_their_way_are_waited_for(postgres_server: str) -> None:
    booking, ticketing = await _databases(postgres_server)
    order = await _sale(booking, ticketing, "A-R01-001", "paid", tickets=False)
    missing = await check(booking, ticketing, settle=0)
    assert missing.violations == [f"paid order {order} has tickets for [], not ['A-R01-001']"]
    await _ticket(ticketing, order, "A-R01-001")
    assert (await check(booking, ticketing, settle=5)).ok
