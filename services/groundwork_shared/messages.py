"""Conversions every gRPC entrypoint needs between protobuf fields and Python
values, with request errors that name the field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from groundwork_shared.errors import InvalidArgument
from groundwork_shared.ids import CANONICAL_UUID, canonical_uuid


@dataclass(frozen=True, slots=True)
class Serialized:
    """A response message already in its wire form (a cache entry): a handler that
    returns one whole returns this, and the server sends its bytes as they are, with
    no parse and re-serialization (interceptors.py)."""

    data: bytes


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def request_datetime(message: Any, field: str) -> datetime | None:
    """An optional Timestamp field of a request, as an aware datetime."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidArgument.one(field, "timestamp out of range") from error


def parse_uuid(field: str, value: str) -> uuid.UUID:
    if not value:
        raise InvalidArgument.one(field, "required")
    parsed = canonical_uuid(value)
    if parsed is None:
        raise InvalidArgument.one(field, CANONICAL_UUID)
    return parsed
