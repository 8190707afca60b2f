"""Catalog rules with no I/O: request validation and pagination cursors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from groundwork_shared.errors import InvalidArgument, Violations
from groundwork_shared.ids import canonical_or_violation
from groundwork_shared.messages import parse_uuid

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CITY_LENGTH = 100
# Bounds of Postgres' timestamptz that also survive protobuf Timestamp round trips.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def seat_id(section: str, row: str, number: int) -> str:
    """ "SECTION-ROW-NNN": sorts in layout order (section, row, number)."""
    return f"{section}-{row}-{number:03d}"


class SeatStatus(Enum):
    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


@dataclass(frozen=True)
class EventFilter:
    """The filters as the client gave them (None: not given)."""

    city: str | None
    starts_after: datetime | None
    starts_before: datetime | None

    def fingerprint(self) -> str:
        """Binds a cursor to the filters it was issued for. The default lower bound
        ("now") is not part of it: it moves between pages, the filter does not."""
        raw = f"{self.city}|{self.starts_after}|{self.starts_before}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    """Position after the last row of a page: keyset pagination on (starts_at, event_id)."""

    starts_at: datetime
    event_id: uuid.UUID

    def encode(self, event_filter: EventFilter) -> str:
        payload = {
            "t": self.starts_at.isoformat(),
            "id": str(self.event_id),
            "f": event_filter.fingerprint(),
        }
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, event_filter: EventFilter) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
            cursor = cls(datetime.fromisoformat(payload["t"]), uuid.UUID(payload["id"]))
            fingerprint = payload["f"]
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as error:
            raise InvalidArgument.one("page_token", "malformed page token") from error
        if cursor.starts_at.tzinfo is None:
            raise InvalidArgument.one("page_token", "malformed page token")
        if fingerprint != event_filter.fingerprint():
            raise InvalidArgument.one(
                "page_token", "page token was issued for different filters; start from page one"
            )
        return cursor


@dataclass(frozen=True)
class ListEventsQuery:
    event_filter: EventFilter
    page_size: int
    after: Cursor | None
    # Where the first page starts: starts_after, or now when not given.
    lower_bound: datetime


def list_events_query(
    *,
    city: str,
    starts_after: datetime | None,
    starts_before: datetime | None,
    page_size: int,
    page_token: str,
    now: datetime,
) -> ListEventsQuery:
    """Validate a ListEvents request; every problem is reported at once."""
    problems = Violations()
    city = city.strip()
    if len(city) > MAX_CITY_LENGTH:
        problems.add("city", f"at most {MAX_CITY_LENGTH} characters")
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        problems.add("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for default)")
    lower = starts_after or now
    if starts_before is not None and starts_before <= lower:
        problems.add("starts_before", "must be later than starts_after")
    problems.raise_if_any()
    event_filter = EventFilter(city or None, starts_after, starts_before)
    after = Cursor.decode(page_token, event_filter) if page_token else None
    return ListEventsQuery(
        event_filter, page_size or DEFAULT_PAGE_SIZE, after, max(lower, EARLIEST)
    )


def parse_event_id(value: str) -> uuid.UUID:
    return parse_uuid("event_id", value)


MAX_NAME = 200
# A seat's price bound: ten of them (booking's most per hold) still sum far inside
# int64 cents, and no real ticket costs more than a million.
MAX_PRICE_CENTS = 100_000_000
UPDATABLE = ("name", "starts_at")


@dataclass(frozen=True)
class NewEvent:
    venue_id: uuid.UUID
    name: str
    starts_at: datetime
    currency: str
    section_prices: dict[str, int]


def new_event(
    *,
    venue_id: str,
    name: str,
    starts_at: datetime | None,
    currency: str,
    section_prices: dict[str, int],
    now: datetime,
) -> NewEvent:
    problems = Violations()
    venue = canonical_or_violation(problems, "venue_id", venue_id)
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        problems.add("name", f"1 to {MAX_NAME} characters")
    if starts_at is None:
        problems.add("starts_at", "required")
    elif starts_at <= now:
        problems.add("starts_at", "must be in the future")
    currency = currency or "EUR"
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        problems.add("currency", "an ISO 4217 code such as EUR")
    if not section_prices:
        problems.add("section_prices", "a price for every section of the venue")
    for section, price in sorted(section_prices.items()):
        if not 0 <= price <= MAX_PRICE_CENTS:
            problems.add(f"section_prices[{section!r}]", f"0 to {MAX_PRICE_CENTS} cents")
    problems.raise_if_any()
    assert starts_at is not None
    return NewEvent(venue, name, starts_at, currency, dict(section_prices))


def check_section_prices(sections: set[str], prices: dict[str, int]) -> None:
    """Every section of the venue needs a price, and only its sections may have one."""
    problems = Violations()
    if missing := sections - set(prices):
        problems.add("section_prices", f"missing sections: {', '.join(sorted(missing))}")
    if unknown := set(prices) - sections:
        problems.add("section_prices", f"not sections of this venue: {', '.join(sorted(unknown))}")
    problems.raise_if_any()


def event_changes(
    *, paths: list[str], name: str, starts_at: datetime | None, now: datetime
) -> dict[str, object]:
    """The columns an UpdateEvent sets, validated."""
    problems = Violations()
    unknown = sorted(set(paths) - set(UPDATABLE))
    if not paths:
        problems.add("update_mask", f"name the fields to change: {', '.join(UPDATABLE)}")
    if unknown:
        problems.add("update_mask", f"cannot update {', '.join(unknown)}")
    changes: dict[str, object] = {}
    if "name" in paths:
        if not 1 <= len(name.strip()) <= MAX_NAME:
            problems.add("name", f"1 to {MAX_NAME} characters")
        changes["name"] = name.strip()
    if "starts_at" in paths:
        if starts_at is None or starts_at <= now:
            problems.add("starts_at", "must be in the future")
        changes["starts_at"] = starts_at
    problems.raise_if_any()
    return changes
