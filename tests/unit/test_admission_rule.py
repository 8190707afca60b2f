"""Booking's waiting-room rule (domain.check_admission) and the one spelling of
ids it is decided on: whatever a client sends, the decision and the action read
the same canonical id."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from groundwork_booking import domain
from groundwork_booking.domain import AdmissionToken, RoomSession
from groundwork_shared import errors, statuses
from groundwork_shared.ids import canonical_uuid
from tests.unit.test_domain_errors import _Call

EVENT = uuid.UUID("0b6f3d2e-5c1a-4e8b-9f00-1234567890ab")
QUEUED_IN = RoomSession(queued=True, admitted=True)
QUEUED_OUT = RoomSession(queued=True, admitted=False)


def _spellings(value: uuid.UUID) -> list[str]:
    text = str(value)
    return [
        text.upper(),
        text[:8].upper() + text[8:],
        value.hex,
        value.hex.upper(),
        "{" + text + "}",
        "urn:uuid:" + text,
        " " + text,
        text + "\n",
        text.replace("-", ""),
    ]


def test_only_the_canonical_spelling_of_a_uuid_is_accepted() -> None:
    assert canonical_uuid(str(EVENT)) == EVENT
    for other in _spellings(EVENT):
        assert uuid.UUID(other.strip()) == EVENT  # Python alone would take each one
        assert canonical_uuid(other) is None, other
    with pytest.raises(errors.InvalidArgument, match="canonical form"):
        domain.hold_request(str(EVENT).upper(), ["A-1"])


@given(st.uuids(), st.text(alphabet="0123456789abcdefABCDEF-{}:urnid ", max_size=45))
def test_canonical_means_one_string_per_uuid(value: uuid.UUID, noise: str) -> None:
    """Whatever a string is, it is accepted only as str() of the UUID it names:
    two accepted strings that name one UUID are the same string."""
    assert canonical_uuid(str(value)) == value
    parsed = canonical_uuid(noise)
    if parsed is not None:
        assert str(parsed) == noise


def test_an_event_without_a_room_needs_no_admission() -> None:
    domain.check_admission(EVENT, "ann", None, RoomSession(queued=False, admitted=False))


def test_a_queued_event_needs_the_callers_own_token_and_a_live_session() -> None:
    own = AdmissionToken("ann", str(EVENT))
    domain.check_admission(EVENT, "ann", own, QUEUED_IN)
    with pytest.raises(domain.AdmissionRequired, match=f"/v1/events/{EVENT}/queue"):
        domain.check_admission(EVENT, "ann", None, QUEUED_IN)
    with pytest.raises(domain.AdmissionMismatch):
        domain.check_admission(EVENT, "bob", own, QUEUED_IN)  # someone else's token
    with pytest.raises(domain.AdmissionMismatch):
        domain.check_admission(uuid.uuid4(), "ann", own, QUEUED_IN)  # another event's
    for spelling in _spellings(EVENT):  # a token names the event in canonical form only
        with pytest.raises(domain.AdmissionMismatch):
            domain.check_admission(EVENT, "ann", AdmissionToken("ann", spelling), QUEUED_IN)
    # A valid token whose session was left, ran out or whose room was reset.
    with pytest.raises(domain.AdmissionEnded, match="join the queue again"):
        domain.check_admission(EVENT, "ann", own, QUEUED_OUT)


@pytest.mark.parametrize(
    "error",
    [domain.AdmissionRequired("x"), domain.AdmissionMismatch("x"), domain.AdmissionEnded("x")],
)
def test_admission_refusals_name_their_reason_for_machines(error: errors.DomainError) -> None:
    status = statuses.to_status(error)
    assert status.code is grpc.StatusCode.PERMISSION_DENIED
    proto = rpc_status.from_call(_Call(status))
    assert proto is not None
    [packed] = proto.details
    info = error_details_pb2.ErrorInfo()
    assert packed.Unpack(info)
    assert (info.reason, info.domain) == (error.reason, "groundwork.local")
    assert info.reason.startswith("ADMISSION_")
