"""Building and reading event envelopes (groundwork.events.v1.Envelope)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from google.protobuf import any_pb2
from google.protobuf.message import Message

from groundwork.events.v1.envelope_pb2 import Envelope
from groundwork_shared.messages import timestamp


def envelope(
    event_type: str,
    aggregate_id: str,
    payload: Message,
    traceparent: str = "",
    tracestate: str = "",
) -> Envelope:
    """An event with a fresh id, stamped now. `outbox.enqueue` (its publication)
    writes the trace context in, from its publish span."""
    packed = any_pb2.Any()
    packed.Pack(payload)
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        time=timestamp(datetime.now(UTC)),
        traceparent=traceparent,
        tracestate=tracestate,
        aggregate_id=aggregate_id,
        payload=packed,
    )


def event_type(message: Message | type[Message]) -> str:
    """An event's type, named by its payload's message: groundwork.booking.v1.SeatsHeld
    is "booking.seats_held". Producers and consumers both derive it, so a name is
    never typed twice."""
    full_name: str = message.DESCRIPTOR.full_name
    parts = full_name.split(".")
    if len(parts) < 3 or parts[0] != "groundwork":
        raise ValueError(f"{full_name} is not a groundwork event message")
    words = re.sub(r"(?<!^)(?=[A-Z])", "_", parts[-1]).lower()
    return f"{parts[1]}.{words}"


def envelope_for(aggregate_id: str, payload: Message) -> Envelope:
    """The envelope every producer publishes: its type derived from the payload."""
    return envelope(event_type(payload), aggregate_id, payload)
