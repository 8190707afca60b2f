"""Parser-differential tests of every gate, through the real edge: for each rule
the edge or a service decides, hypothesis generates what a client can send that
means the same or another thing to the service (id spellings, repeated and
unknown protobuf fields, wrong wire types, field order, non-minimal varints,
JSON duplicates, unknown members and escapes, path spellings, header and query
spellings), and each case checks that the decision taken is the one the service
then acts on.

    admission    HoldSeats of a queued event (native gRPC, gRPC-Web, REST JSON):
                 refused iff the message booking parses names the queued event,
                 and no seat of that event is ever held
    roles        an ADMIN method by any path spelling, REST or gRPC: a customer's
                 token never gets it, an admin's canonical call does
    ownership    another customer's order by any id spelling: never shown
    identity     identity and rate-limit headers a client sends in any spelling:
                 the service sees the verified user only
    websocket    ?access_token= in any spelling beside a forged one: the stream is
                 the verified user's or refused

The cases per gate are printed (pytest -s) and counted in the closing note."""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groundwork.booking.v1 import booking_pb2
from groundwork_cli.h2load import grpc_frame
from groundwork_shared.ids import canonical_uuid
from tests import edge_flows
from tests.e2e.conftest import Mesh

HOLD = "/groundwork.booking.v1.BookingService/HoldSeats"
CASES: Counter[str] = Counter()
# Deterministic (derandomize): the same cases every run, so a failure reproduces.
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Sale:
    """A queued event (its room paused: nobody is admitted) beside a free one."""

    queued: str
    free: str
    seats: list[str]
    customer: str


@pytest.fixture(scope="module")
def sale(mesh: Mesh) -> Iterator[Sale]:
    admin = mesh.admin_token()
    queued, free = edge_flows.new_event(mesh.http, admin), edge_flows.new_event(mesh.http, admin)
    edge_flows.create_room(mesh.http, admin, queued, paused=True)
    seats = httpx.get(f"{mesh.http}/v1/events/{free}/seats").json()["seats"]
    ids = [s["seat_id"] for s in seats][:300]
    yield Sale(queued, free, ids, mesh.user_token())
    # Whatever was sent, the queued event sold nothing.
    layout = httpx.get(f"{mesh.http}/v1/events/{queued}/seats").json()["seats"]
    assert {s["status"] for s in layout} == {"SEAT_STATUS_AVAILABLE"}
    print("\ncases per gate:", dict(sorted(CASES.items())))


def spellings(value: str) -> st.SearchStrategy[str]:
    """`value` and the other ways a client might write the same UUID."""
    hexed = value.replace("-", "")
    return st.sampled_from(
        [
            value,
            value.upper(),
            value[:1].upper() + value[1:],
            hexed,
            "{" + value + "}",
            "urn:uuid:" + value,
            value + " ",
            " " + value,
            value + "\x00",
            value[:-1],
        ]
    )


# --- protobuf wire format, by hand, so every legal and illegal form can be sent ---


def varint(value: int, padding: int = 0) -> bytes:
    """`value` as a varint, with `padding` extra (non-minimal) continuation bytes,
    which protobuf parsers accept up to 10 bytes in all."""
    groups = []
    while True:
        groups.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    groups += [0] * padding
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


@dataclass(frozen=True)
class Field:
    number: int
    wire: int
    payload: bytes
    tag_padding: int = 0
    length_padding: int = 0

    def encode(self) -> bytes:
        tag = varint(self.number << 3 | self.wire, self.tag_padding)
        if self.wire == 2:
            return tag + varint(len(self.payload), self.length_padding) + self.payload
        return tag + self.payload


def _padding() -> st.SearchStrategy[int]:
    return st.sampled_from([0, 0, 0, 1, 3])


def string_field(number: int, text: st.SearchStrategy[str]) -> st.SearchStrategy[Field]:
    return st.builds(
        lambda value, tag, length: Field(number, 2, value.encode(), tag, length),
        text,
        _padding(),
        _padding(),
    )


def unknown_field() -> st.SearchStrategy[Field]:
    number = st.one_of(st.integers(4, 40), st.integers(1000, 2**29 - 1))
    return st.one_of(
        st.builds(lambda n, v: Field(n, 0, varint(v)), number, st.integers(0, 2**64 - 1)),
        st.builds(lambda n, b: Field(n, 1, b), number, st.binary(min_size=8, max_size=8)),
        st.builds(lambda n, b: Field(n, 5, b), number, st.binary(min_size=4, max_size=4)),
        # A length-delimited unknown: bytes, or packed varints.
        st.builds(lambda n, b: Field(n, 2, b), number, st.binary(max_size=16)),
        st.builds(
            lambda n, vs: Field(n, 2, b"".join(varint(v) for v in vs)),
            number,
            st.lists(st.integers(0, 2**32), max_size=4),
        ),
    )


def hold_message(sale: Sale) -> st.SearchStrategy[list[Field]]:
    event = st.one_of(spellings(sale.queued), spellings(sale.free))
    # event_id with the wrong wire type: protobuf keeps it as an unknown field.
    misplaced = st.builds(lambda v: Field(1, 0, varint(v)), st.integers(0, 2**20))
    seat = string_field(2, st.sampled_from(sale.seats))
    parts = st.lists(
        st.one_of(string_field(1, event), seat, unknown_field(), misplaced), min_size=1, max_size=6
    )
    # At least one event and one seat somewhere; repeats and order are free.
    return st.builds(
        lambda first, seat0, rest, order: _shuffled([first, seat0, *rest], order),
        string_field(1, event),
        seat,
        parts,
        st.randoms(use_true_random=False),
    )


def _shuffled(fields: list[Field], rng: Any) -> list[Field]:
    rng.shuffle(fields)
    return fields


def with_key(fields: list[Field]) -> bytes:
    key = Field(3, 2, f"fuzz-{uuid.uuid4()}".encode())
    return b"".join(f.encode() for f in [*fields, key])


@dataclass(frozen=True)
class Outcome:
    """What a hold came to: the gRPC code, its message, the hold's event when made."""

    code: grpc.StatusCode
    message: str
    held_event: str = ""


def expected(data: bytes, sale: Sale) -> grpc.StatusCode:
    """What booking must answer for these bytes, from the same parser it uses."""
    try:
        request = booking_pb2.HoldSeatsRequest.FromString(data)
    except DecodeError:
        return grpc.StatusCode.INVALID_ARGUMENT
    seats = list(request.seat_ids)
    if (
        canonical_uuid(request.event_id) is None
        or len(set(seats)) != len(seats)
        or not 1 <= len(seats) <= 10
    ):
        return grpc.StatusCode.INVALID_ARGUMENT
    if request.event_id == sale.queued:
        return grpc.StatusCode.PERMISSION_DENIED
    if request.event_id == sale.free:
        return grpc.StatusCode.OK
    return grpc.StatusCode.NOT_FOUND


def check_hold(outcome: Outcome, want: grpc.StatusCode, sale: Sale) -> None:
    if want is grpc.StatusCode.OK:
        # Made, or lost to an earlier case that holds the seat: past the gate either way.
        assert outcome.code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), outcome
    else:
        assert outcome.code is want, outcome
    if outcome.code is grpc.StatusCode.OK:
        assert outcome.held_event == sale.free, outcome
    if outcome.code is grpc.StatusCode.PERMISSION_DENIED:
        assert sale.queued in outcome.message, outcome


def _raw_hold(channel: grpc.Channel) -> Callable[..., Any]:
    return channel.unary_unary(
        HOLD, request_serializer=lambda b: b, response_deserializer=booking_pb2.Hold.FromString
    )


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_admission_over_native_grpc_decides_on_the_message_booking_parses(
    mesh: Mesh, sale: Sale
) -> None:
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        hold = _raw_hold(channel)

        @FUZZ
        @given(fields=hold_message(sale))
        def case(fields: list[Field]) -> None:
            data = with_key(fields)
            try:
                made = hold(data, metadata=tuple(_bearer(sale.customer).items()), timeout=20)
                outcome = Outcome(grpc.StatusCode.OK, "", made.event_id)
            except grpc.RpcError as error:
                outcome = Outcome(error.code(), error.details() or "")
            check_hold(outcome, expected(data, sale), sale)
            CASES["admission/grpc"] += 1

        case()


def _unbase64(text: bytes) -> bytes:
    """grpc-web-text: each frame is base64 of its own, padding and all."""
    out, rest = b"", text.strip()
    while rest:
        match = re.match(rb"[A-Za-z0-9+/]*={0,2}", rest)
        assert match and match.group(0), rest[:20]
        out += base64.b64decode(match.group(0))
        rest = rest[match.end() :]
    return out


def _grpc_web_status(headers: httpx.Headers, body: bytes) -> tuple[grpc.StatusCode, str, bytes]:
    """(status, message, the first data frame) of a gRPC-Web response: the status
    in the body's trailer frame, or in the headers of a trailers-only answer."""
    message, position = b"", 0
    trailers = {k: v for k, v in headers.items() if k.startswith("grpc-")}
    while position + 5 <= len(body):
        flag, length = body[position], struct.unpack(">I", body[position + 1 : position + 5])[0]
        chunk = body[position + 5 : position + 5 + length]
        position += 5 + length
        if flag & 0x80:
            for line in chunk.decode().split("\r\n"):
                name, _, value = line.partition(":")
                trailers[name.strip().lower()] = value.strip()
        elif not message:
            message = chunk
    number = int(trailers.get("grpc-status", "2"))
    code = next(c for c in grpc.StatusCode if c.value[0] == number)
    return code, httpx.URL("?m=" + trailers.get("grpc-message", "")).params["m"], message


def test_admission_over_grpc_web_decides_on_the_message_booking_parses(
    mesh: Mesh, sale: Sale
) -> None:
    with httpx.Client(base_url=mesh.http, timeout=20) as client:

        @FUZZ
        @given(fields=hold_message(sale), text=st.booleans())
        def case(fields: list[Field], text: bool) -> None:
            data = with_key(fields)
            frame = grpc_frame(data)
            kind = "application/grpc-web-text" if text else "application/grpc-web+proto"
            reply = client.post(
                HOLD,
                content=base64.b64encode(frame) if text else frame,
                headers={**_bearer(sale.customer), "content-type": kind, "x-grpc-web": "1"},
            )
            assert reply.status_code == 200, (reply.headers, reply.text)
            answered_text = reply.headers.get("content-type", "").startswith(
                "application/grpc-web-text"
            )
            body = _unbase64(reply.content) if answered_text else reply.content
            code, message, payload = _grpc_web_status(reply.headers, body)
            made = booking_pb2.Hold.FromString(payload) if code is grpc.StatusCode.OK else None
            outcome = Outcome(code, message, made.event_id if made else "")
            check_hold(outcome, expected(data, sale), sale)
            CASES["admission/grpc-web"] += 1

        case()


def _json_value(text: str, escape: bool) -> str:
    """A JSON string for `text`, its characters \\u-escaped when `escape`."""
    if not escape:
        return json.dumps(text)
    return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'


_REST_STATUS = {
    200: grpc.StatusCode.OK,
    400: grpc.StatusCode.INVALID_ARGUMENT,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
}


def test_admission_over_rest_json_decides_on_the_message_booking_parses(
    mesh: Mesh, sale: Sale
) -> None:
    """JSON has no single reading either: a member twice, both field spellings
    (event_id and eventId), unknown members, escapes. Whatever the transcoder made
    of it, the hold is refused exactly when booking's message names the queued
    event, and made only on the free one."""
    names = st.sampled_from(["event_id", "eventId"])
    ids = st.one_of(spellings(sale.queued), spellings(sale.free))
    member = st.one_of(
        st.tuples(names, ids, st.booleans()),
        st.tuples(
            st.sampled_from(["seat_ids", "seatIds"]), st.sampled_from(sale.seats), st.just(False)
        ),
        st.tuples(st.sampled_from(["extra", "event", "EVENT_ID"]), ids, st.booleans()),
    )

    @FUZZ
    @given(
        first=st.tuples(names, ids, st.booleans()),
        members=st.lists(member, max_size=4),
        seat=st.sampled_from(sale.seats),
    )
    def case(first: tuple[str, str, bool], members: list[tuple[str, str, bool]], seat: str) -> None:
        parts = [f'"{first[0]}": {_json_value(first[1], first[2])}']
        parts.append(f'"seat_ids": [{json.dumps(seat)}]')
        for name, value, escape in members:
            rendered = _json_value(value, escape)
            parts.append(
                f'"{name}": [{rendered}]'
                if name in ("seat_ids", "seatIds")
                else f'"{name}": {rendered}'
            )
        parts.append(f'"idempotency_key": "fuzz-{uuid.uuid4()}"')
        body = "{" + ", ".join(parts) + "}"
        reply = httpx.post(
            f"{mesh.http}/v1/holds",
            content=body,
            headers={**_bearer(sale.customer), "content-type": "application/json"},
            timeout=20,
        )
        assert reply.status_code in _REST_STATUS, (body, reply.status_code, reply.text)
        answer = reply.json()
        code = _REST_STATUS[reply.status_code]
        if "code" in answer:  # a service's status, as the transcoder renders it
            code = next(c for c in grpc.StatusCode if c.value[0] == answer["code"])
        outcome = Outcome(code, str(answer.get("message", "")), str(answer.get("event_id", "")))
        if code is grpc.StatusCode.OK:
            assert outcome.held_event == sale.free, (body, outcome)
        if code is grpc.StatusCode.PERMISSION_DENIED:
            assert sale.queued in outcome.message, (body, outcome)
        CASES["admission/rest"] += 1

    case()


# --- roles: an ADMIN method by every path a client can spell -----------------


def _path_spellings(path: str) -> list[str]:
    head, _, last = path.rpartition("/")
    return [
        path,
        path.upper(),
        head + "//" + last,
        head + "/./" + last,
        head + "/x/../" + last,
        path + "/",
        head + "%2F" + last,
        head + "%2f" + last,
        head + "/" + "".join(f"%{ord(c):02X}" for c in last),
        head + "/" + last[:1].upper() + last[1:],
        path + ";a=b",
        path + "%00",
        path + "%20",
        path + "#x",
    ]


ROLE_CASES = [("rest", p) for p in _path_spellings("/v1/rooms")] + [
    ("grpc", p) for p in _path_spellings("/groundwork.waitingroom.v1.WaitingRoomService/ListRooms")
]


def _raw_get(target: str, path: str, token: str) -> int:
    """The status of a GET sent byte for byte as written (HTTP/1.1 on a socket)."""
    host, _, port = target.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {target}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status_line = conn.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def _call(mesh: Mesh, kind: str, path: str, token: str) -> int:
    """The HTTP status of an admin read by `path`, sent as written (no client-side
    normalisation), or of its gRPC status mapped the same way."""
    if kind == "rest":
        return _raw_get(mesh.plan.edge_http(), path, token)
    with grpc.insecure_channel(mesh.plan.edge_http()) as channel:
        method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            path, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        try:
            method(b"", metadata=tuple(_bearer(token).items()), timeout=10)
            return 200
        except grpc.RpcError as error:
            return {grpc.StatusCode.PERMISSION_DENIED: 403}.get(error.code(), 400)


@pytest.mark.parametrize(("kind", "path"), ROLE_CASES)
def test_roles_hold_for_every_spelling_of_an_admin_path(
    mesh: Mesh, sale: Sale, kind: str, path: str
) -> None:
    """The edge's RBAC matches the normalised path; the service checks the role
    again. Whatever spelling reaches a method, a customer never gets an admin's
    answer; the canonical spelling gives an admin theirs."""
    customer = _call(mesh, kind, path, sale.customer)
    assert not 200 <= customer < 300, (kind, path, customer)
    if path in ("/v1/rooms", "/groundwork.waitingroom.v1.WaitingRoomService/ListRooms"):
        assert _call(mesh, kind, path, mesh.admin_token()) == 200
    CASES["roles"] += 1


# --- ownership: another customer's order by any id spelling ------------------


@pytest.fixture(scope="module")
def someone_elses_order(mesh: Mesh) -> str:
    _, order_id, _ = mesh.purchase(0, edge_flows.available_seat(mesh.http, _first_event(mesh), 7))
    return order_id


def _first_event(mesh: Mesh) -> str:
    return str(
        httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}).json()["events"][0]["event_id"]
    )


def test_ownership_holds_for_every_spelling_of_an_order_id(
    mesh: Mesh, sale: Sale, someone_elses_order: str
) -> None:
    escaped = "".join(f"%{ord(c):02x}" for c in someone_elses_order)

    @FUZZ
    @given(spelling=st.one_of(spellings(someone_elses_order), st.just(escaped)))
    def case(spelling: str) -> None:
        path = spelling if spelling == escaped else quote(spelling, safe="{}:")
        reply = httpx.get(
            f"{mesh.http}/v1/orders/{path}", headers=_bearer(sale.customer), timeout=10
        )
        assert reply.status_code in (400, 404), (spelling, reply.status_code, reply.text)
        assert someone_elses_order not in reply.text or reply.status_code == 404
        assert "amount_cents" not in reply.text
        CASES["ownership"] += 1

    case()


# --- identity and rate-limit keys: headers a client sends --------------------


IDENTITY_NAMES = [
    "x-groundwork-user-id",
    "X-Groundwork-User-Id",
    "x-groundwork-claims",
    "x-groundwork-admission-claims",
    "x-groundwork-user-id-bin",
    "x-groundwork-http-read",
]


def test_identity_headers_in_any_spelling_never_reach_a_service(mesh: Mesh, sale: Sale) -> None:
    """The per-user rate limit and every service read x-groundwork-user-id, which
    the edge sets from the verified token. A client's own copy, in any case,
    repeated or next to it, changes neither: the orders listed are the token's
    user's, and a forged admission claim holds nothing on the queued event."""
    forged_claims = base64.urlsafe_b64encode(
        json.dumps({"sub": "someone", "event": sale.queued, "roles": ["admin"]}).encode()
    ).decode()

    @FUZZ
    @given(
        headers=st.lists(
            st.tuples(st.sampled_from(IDENTITY_NAMES), st.sampled_from(["someone", forged_claims])),
            min_size=1,
            max_size=4,
        )
    )
    def case(headers: list[tuple[str, str]]) -> None:
        sent = [*_bearer(sale.customer).items(), *headers]
        rooms = httpx.get(f"{mesh.http}/v1/rooms", headers=sent, timeout=10)
        assert rooms.status_code == 403, rooms.text
        body = {
            "event_id": sale.queued,
            "seat_ids": [sale.seats[0]],
            "idempotency_key": f"fuzz-{uuid.uuid4()}",
        }
        hold = httpx.post(f"{mesh.http}/v1/holds", headers=sent, json=body, timeout=10)
        assert hold.status_code in (401, 403), hold.text
        CASES["identity"] += 1

    case()


# --- WebSocket authentication: ?access_token= spellings ----------------------


def test_websocket_tokens_in_any_spelling_are_the_verified_users_or_refused(
    mesh: Mesh, sale: Sale
) -> None:
    import asyncio

    import aiohttp

    good = sale.customer
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    ws = mesh.http.replace("http://", "ws://")
    queries = [
        (f"access_token={good}", True),
        (f"access_token={forged}", False),
        (f"access_token={forged}&access_token={good}", False),
        (f"access_token={good}&access_token={forged}", None),
        (f"Access_Token={good}", False),
        (f"ACCESS_TOKEN={good}", False),
        ("access_token=" + "".join(f"%{ord(c):02X}" for c in good), None),
        (f"access_token={good}%00", False),
        (f"access%5Ftoken={good}", None),
        (f"access_token=Bearer%20{good}", False),
    ]

    async def open_one(query: str) -> bool:
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"{ws}/v1/live/orders?{query}") as socket:
                    first = await socket.receive_json(timeout=10)
                    assert first.get("ready", {}).get("topic") == "orders", first
                    return True
            except aiohttp.WSServerHandshakeError as error:
                assert error.status in (400, 401), (query, error.status)
                return False

    for query, accepted in queries:
        opened = asyncio.run(open_one(query))
        if accepted is not None:
            assert opened is accepted, query
        CASES["websocket"] += 1
