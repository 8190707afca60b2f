"""The correctness check after a load: the system's own state, read from booking's
and ticketing's databases, must show

- no seat sold twice (in booking's paid orders, its seat rows, or ticketing's tickets);
- every paid order with exactly its tickets, and no ticket without a paid order;
- every hold converted into an order, released, expired, or still within its time.

Tickets are issued from the bus, so a paid order may lack its tickets for a moment:
the check waits up to `settle` seconds for them before calling it a violation."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Sweeper and bus: how late past its expiry a hold may still read active.
GRACE_SECONDS = 30


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": self.violations, **self.figures}


SOLD_TWICE_IN_ORDERS = """
    SELECT event_id, seat, array_agg(order_id::text ORDER BY order_id) AS orders
    FROM orders, unnest(seat_ids) AS seat
    WHERE status = 'paid'
    GROUP BY event_id, seat HAVING count(*) > 1
"""
# A paid order's seats must be sold, and held by that order's hold.
PAID_SEATS_NOT_SOLD = """
    SELECT o.order_id::text, seat, s.state, s.hold_id = o.hold_id AS same_hold
    FROM orders o CROSS JOIN LATERAL unnest(o.seat_ids) AS seat
    JOIN seats s ON s.event_id = o.event_id AND s.seat_id = seat
    WHERE o.status = 'paid' AND (s.state <> 'sold' OR s.hold_id IS DISTINCT FROM o.hold_id)
"""
STALE_HOLDS = """
    SELECT hold_id::text, expires_at FROM holds
    WHERE status = 'active' AND expires_at < now() - make_interval(secs => $1)
"""
CONVERTED_WITHOUT_ORDER = """
    SELECT h.hold_id::text FROM holds h
    WHERE h.status = 'converted' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.hold_id = h.hold_id)
"""
HOLDS_BY_STATUS = """
    SELECT status, count(*) AS n, count(*) FILTER (WHERE expires_at > now()) AS unexpired
    FROM holds GROUP BY status
"""
PAID_ORDERS = "SELECT order_id::text, seat_ids FROM orders WHERE status = 'paid'"
TICKETS = "SELECT order_id, event_id, seat_id FROM tickets"


async def _fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _tickets_problems(
    paid: dict[str, list[str]], tickets: list[asyncpg.Record]
) -> tuple[list[str], list[str]]:
    """(missing: paid orders without all their tickets, wrong: everything else)."""
    issued: dict[str, list[str]] = {}
    seat_holders: dict[tuple[str, str], set[str]] = {}
    for t in tickets:
        issued.setdefault(t["order_id"], []).append(t["seat_id"])
        seat_holders.setdefault((t["event_id"], t["seat_id"]), set()).add(t["order_id"])
    missing = [
        f"paid order {order} has tickets for {sorted(issued.get(order, []))}, not {sorted(seats)}"
        for order, seats in paid.items()
        if sorted(issued.get(order, [])) != sorted(seats)
    ]
    wrong = [
        f"ticket for order {order}, which is not paid" for order in issued if order not in paid
    ]
    wrong += [
        f"seat {seat} of event {event} has tickets from orders {sorted(orders)}"
        for (event, seat), orders in seat_holders.items()
        if len(orders) > 1
    ]
    return missing, wrong


async def check(booking_url: str, ticketing_url: str, settle: float = 30) -> Report:
    report = Report()
    for row in await _fetch(booking_url, SOLD_TWICE_IN_ORDERS):
        report.violations.append(
            f"seat {row['seat']} of event {row['event_id']} sold in orders {row['orders']}"
        )
    for row in await _fetch(booking_url, PAID_SEATS_NOT_SOLD):
        report.violations.append(
            f"paid order {row['order_id']}: seat {row['seat']} is {row['state']}"
            + ("" if row["same_hold"] else " under another hold")
        )
    for row in await _fetch(booking_url, STALE_HOLDS, GRACE_SECONDS):
        report.violations.append(
            f"hold {row['hold_id']} still active, expired at {row['expires_at'].isoformat()}"
        )
    for row in await _fetch(booking_url, CONVERTED_WITHOUT_ORDER):
        report.violations.append(f"hold {row['hold_id']} converted but has no order")

    # Tickets follow payment through the bus: wait for the stragglers.
    deadline = time.monotonic() + settle
    while True:
        paid = {r["order_id"]: list(r["seat_ids"]) for r in await _fetch(booking_url, PAID_ORDERS)}
        tickets = await _fetch(ticketing_url, TICKETS)
        missing, wrong = _tickets_problems(paid, tickets)
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    report.violations += missing + wrong

    holds = {
        r["status"]: {"count": r["n"], "unexpired": r["unexpired"]}
        for r in await _fetch(booking_url, HOLDS_BY_STATUS)
    }
    report.figures = {
        "paid_orders": len(paid),
        "tickets": len(tickets),
        "holds": holds,
    }
    return report
