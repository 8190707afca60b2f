"""Payments' rules with no I/O: what a charge request must hold, and its outcomes."""

from __future__ import annotations

from enum import StrEnum

from groundwork_shared.errors import AlreadyExists, Violations


class ChargeStatus(StrEnum):
    """A charge's outcome (the values are the database's)."""

    APPROVED = "approved"
    DECLINED = "declined"


class OrderAlreadyPaid(AlreadyExists):
    """An approved charge of the order exists, made under another idempotency key."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} is already paid")


def check_charge(amount_cents: int, currency: str, order_id: str, card_token: str) -> None:
    """Every problem with a charge request at once (InvalidArgument), or nothing."""
    problems = Violations()
    if amount_cents <= 0:
        problems.add("amount_cents", "must be positive")
    if len(currency) != 3:
        problems.add("currency", "an ISO 4217 code")
    if not order_id:
        problems.add("order_id", "required")
    if not card_token:
        problems.add("card_token", "required")
    problems.raise_if_any()
