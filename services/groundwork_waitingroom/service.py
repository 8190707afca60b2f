"""groundwork.waitingroom.v1.WaitingRoomService: customers' places and the
admins' rooms. Translates between messages and the domain; state is in Redis."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from google.api import httpbody_pb2

from groundwork.waitingroom.v1 import admission_pb2, admission_pb2_grpc, waitingroom_pb2_grpc
from groundwork.waitingroom.v1 import waitingroom_pb2 as pb
from groundwork_shared.caller import Context, caller, require_role
from groundwork_shared.errors import AlreadyExists, InvalidArgument, NotFound
from groundwork_shared.messages import parse_uuid, request_datetime, timestamp
from groundwork_waitingroom import domain
from groundwork_waitingroom.domain import Method, Mode, Place, Room, Status
from groundwork_waitingroom.repository import Figures, Rooms
from groundwork_waitingroom.tokens import Issuer, admission_token

_METHODS = {pb.QUEUEING_METHOD_FIFO: Method.FIFO, pb.QUEUEING_METHOD_RANDOM: Method.RANDOM}
_MODES = {pb.ADMISSION_MODE_FIXED: Mode.FIXED, pb.ADMISSION_MODE_ADAPTIVE: Mode.ADAPTIVE}
_METHOD_ENUM = {v: k for k, v in _METHODS.items()}
_MODE_ENUM = {v: k for k, v in _MODES.items()}
_STATUS = {
    Status.PRE_QUEUE: pb.TICKET_STATUS_PRE_QUEUE,
    Status.WAITING: pb.TICKET_STATUS_WAITING,
    Status.ADMITTED: pb.TICKET_STATUS_ADMITTED,
    Status.NONE: pb.TICKET_STATUS_NONE,
}
_STATUS_OF = {v: k for k, v in _STATUS.items()}
# How often a watched place is read again (WatchQueueTicket).
CHECK_SECONDS = 0.5
# Room fields an admin sets (the rest are figures).
SETTABLE = (
    "total_active_users",
    "new_users_per_minute",
    "session_seconds",
    "queueing_method",
    "opens_at",
    "paused",
    "mode",
    "target_booking_p99_ms",
)


def _event_id(value: str, field: str = "event_id") -> str:
    return str(parse_uuid(field, value))


def _changes(message: pb.Room, fields: list[str]) -> dict[str, Any]:
    """Domain field -> value, for each named message field."""
    changes: dict[str, Any] = {}
    for name in fields:
        if name not in SETTABLE:
            raise InvalidArgument.one("update_mask", f"{name} cannot be set")
        if name == "queueing_method":
            if message.queueing_method not in _METHODS:
                raise InvalidArgument.one("room.queueing_method", "FIFO or RANDOM")
            changes["method"] = _METHODS[message.queueing_method]
        elif name == "mode":
            if message.mode not in _MODES:
                raise InvalidArgument.one("room.mode", "FIXED or ADAPTIVE")
            changes["mode"] = _MODES[message.mode]
        elif name == "opens_at":
            changes["opens_at"] = request_datetime(message, "opens_at") or domain.EPOCH
        else:
            changes[name] = getattr(message, name)
    return changes


def _given(message: pb.Room) -> list[str]:
    """The settable fields the message sets (each has explicit presence)."""
    return [name for name in SETTABLE if message.HasField(name)]  # type: ignore[arg-type]


def room_message(figures: Figures) -> pb.Room:
    room = figures.room
    return pb.Room(
        event_id=room.event_id,
        total_active_users=room.total_active_users,
        new_users_per_minute=room.new_users_per_minute,
        session_seconds=room.session_seconds,
        queueing_method=_METHOD_ENUM[room.method],
        opens_at=timestamp(room.opens_at),
        paused=room.paused,
        mode=_MODE_ENUM[room.mode],
        target_booking_p99_ms=room.target_booking_p99_ms,
        queue_length=figures.queue_length,
        active_users=figures.active,
        admitted_total=figures.served,
        admitted_last_minute=figures.admitted_last_minute,
        admission_rate_per_minute=figures.rate_per_minute,
        observed_booking_p99_ms=figures.observed_booking_p99_ms,
    )


def _moved(before: pb.QueueTicket | None, after: pb.QueueTicket) -> bool:
    """Whether the place changed: the estimates (a pre-queue countdown moves every
    moment) do not count, the place, the queue, the pace and the status do."""
    if before is None:
        return True
    steady = [pb.QueueTicket(), pb.QueueTicket()]
    for copy, ticket in zip(steady, (before, after), strict=True):
        copy.CopyFrom(ticket)
        copy.ClearField("estimated_wait_seconds")
        copy.ClearField("poll_after_seconds")
    return steady[0] != steady[1]


class WaitingRoomService(waitingroom_pb2_grpc.WaitingRoomServiceServicer):
    def __init__(self, rooms: Rooms, issuer: Issuer) -> None:
        self._rooms = rooms
        self._issuer = issuer

    async def _ticket(self, event_id: str, user: str, place: Place | None = None) -> pb.QueueTicket:
        now = datetime.now(UTC)
        place = place or await self._rooms.place(event_id, user, now)
        if place is None:
            raise NotFound(f"event {event_id} has no waiting room")
        seen = domain.view(place, random.random())
        ticket = pb.QueueTicket(
            event_id=event_id,
            status=_STATUS[seen.status],
            position=seen.position,
            queue_length=place.queue_length,
            served=place.served,
            estimated_wait_seconds=seen.estimated_wait_seconds,
            opens_at=timestamp(datetime.fromtimestamp(place.opens_at_ms / 1000, UTC)),
            paused=place.paused,
            queueing_method=_METHOD_ENUM[place.method],
            poll_after_seconds=seen.poll_after_seconds,
        )
        if place.joined_ms is not None:
            ticket.joined_at.CopyFrom(
                timestamp(datetime.fromtimestamp(place.joined_ms / 1000, UTC))
            )
        if seen.status is Status.ADMITTED and place.admitted_until_ms is not None:
            until = datetime.fromtimestamp(place.admitted_until_ms / 1000, UTC)
            ticket.admission_token = admission_token(self._issuer, user, event_id, now, until)
            ticket.admission_expires_at.CopyFrom(timestamp(until))
        return ticket

    async def JoinQueue(self, request: pb.JoinQueueRequest, context: Context) -> pb.QueueTicket:
        who = caller(context)
        event_id = _event_id(request.event_id)
        place = await self._rooms.join(event_id, who.user_id, datetime.now(UTC))
        if place is None:
            raise NotFound(f"event {event_id} has no waiting room")
        return await self._ticket(event_id, who.user_id, place)

    async def GetQueueTicket(
        self, request: pb.GetQueueTicketRequest, context: Context
    ) -> pb.QueueTicket:
        return await self._ticket(_event_id(request.event_id), caller(context).user_id)

    async def WatchQueueTicket(
        self, request: pb.WatchQueueTicketRequest, context: Context
    ) -> AsyncIterator[pb.QueueTicket]:
        """The place as it moves. Redis is read every CHECK_SECONDS for this caller
        (one script call); a ticket goes out only when it changed or the heartbeat
        is due. A cancelled call ends this generator at its await (the interceptor
        counts it out of groundwork_rpc_streams_open)."""
        user = caller(context).user_id
        event_id = _event_id(request.event_id)
        watch = domain.Watch.of(request.heartbeat_seconds, request.max_seconds)
        clock = asyncio.get_running_loop().time
        ends = clock() + watch.max_seconds
        sent: pb.QueueTicket | None = None
        sent_at = 0.0
        while True:
            ticket = await self._ticket(event_id, user)
            now = clock()
            if _moved(sent, ticket) or now - sent_at >= watch.heartbeat_seconds:
                yield ticket
                sent, sent_at = ticket, now
            if domain.watch_ends(_STATUS_OF[ticket.status]) or now >= ends:
                return
            await asyncio.sleep(min(CHECK_SECONDS, ends - now))

    async def LeaveQueue(self, request: pb.LeaveQueueRequest, context: Context) -> pb.QueueTicket:
        who = caller(context)
        event_id = _event_id(request.event_id)
        await self._rooms.leave(event_id, who.user_id)
        return await self._ticket(event_id, who.user_id)

    async def CreateRoom(self, request: pb.CreateRoomRequest, context: Context) -> pb.Room:
        require_role(context, "admin")
        event_id = _event_id(request.room.event_id, "room.event_id")
        room = Room(event_id).with_changes(**_changes(request.room, _given(request.room)))
        if not await self._rooms.create(room, domain.starting_rate(room)):
            raise AlreadyExists(f"event {event_id} already has a waiting room")
        return await self._figures(event_id)

    async def UpdateRoom(self, request: pb.UpdateRoomRequest, context: Context) -> pb.Room:
        require_role(context, "admin")
        event_id = _event_id(request.room.event_id, "room.event_id")
        current = await self._rooms.get(event_id)
        if current is None:
            raise NotFound(f"event {event_id} has no waiting room")
        fields = list(request.update_mask.paths) or _given(request.room)
        room = current.room.with_changes(**_changes(request.room, fields))
        # A new mode or ceiling restarts the rate from where that mode starts.
        moved = room.mode is not current.room.mode or (
            room.new_users_per_minute != current.room.new_users_per_minute
        )
        if not await self._rooms.update(room, domain.starting_rate(room) if moved else None):
            raise NotFound(f"event {event_id} has no waiting room")
        return await self._figures(event_id)

    async def GetRoom(self, request: pb.GetRoomRequest, context: Context) -> pb.Room:
        require_role(context, "admin")
        return await self._figures(_event_id(request.event_id))

    async def ListRooms(
        self, request: pb.ListRoomsRequest, context: Context
    ) -> pb.ListRoomsResponse:
        require_role(context, "admin")
        rooms = [await self._rooms.get(e) for e in await self._rooms.events()]
        return pb.ListRoomsResponse(rooms=[room_message(f) for f in rooms if f is not None])

    async def DeleteRoom(self, request: pb.DeleteRoomRequest, context: Context) -> pb.Room:
        require_role(context, "admin")
        event_id = _event_id(request.event_id)
        room = await self._figures(event_id)
        await self._rooms.delete(event_id)
        return room

    async def ListQueuedEvents(
        self, request: pb.ListQueuedEventsRequest, context: Context
    ) -> pb.ListQueuedEventsResponse:
        return pb.ListQueuedEventsResponse(event_ids=await self._rooms.events())

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(
            content_type="application/json", data=self._issuer.signer.jwks()
        )

    async def _figures(self, event_id: str) -> pb.Room:
        figures = await self._rooms.get(event_id)
        if figures is None:
            raise NotFound(f"event {event_id} has no waiting room")
        return room_message(figures)


class AdmissionService(admission_pb2_grpc.AdmissionServiceServicer):
    """For booking alone (the sidecar admits booking and refuses the edge): the
    live answer behind an admission token, read on every hold of a queued event."""

    def __init__(self, rooms: Rooms) -> None:
        self._rooms = rooms

    async def CheckAdmission(
        self, request: admission_pb2.CheckAdmissionRequest, context: Context
    ) -> admission_pb2.AdmissionStatus:
        event_id = _event_id(request.event_id)
        if not request.user_id:
            raise InvalidArgument.one("user_id", "required")
        session = await self._rooms.session(event_id, request.user_id, datetime.now(UTC))
        status = admission_pb2.AdmissionStatus(
            queued=session.queued, admitted=session.until_ms is not None
        )
        if session.until_ms is not None:
            ends = datetime.fromtimestamp(session.until_ms / 1000, UTC)
            status.session_ends_at.CopyFrom(timestamp(ends))
        return status
