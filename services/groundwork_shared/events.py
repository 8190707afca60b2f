"""Building and reading event envelopes (groundwork.events.v1.Envelope)."""

from __future__ import annotations

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
