"""The waiting room's answer to booking, from the real rooms in Redis: the
AdmissionService booking's client calls through its sidecar, called in process
(the sidecar path is exercised end to end)."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from groundwork.waitingroom.v1 import admission_pb2
from groundwork_booking.domain import RoomSession
from groundwork_waitingroom.domain import Room
from groundwork_waitingroom.repository import Rooms
from groundwork_waitingroom.service import AdmissionService


class _Internal:
    """CheckAdmission reads nothing from its context."""


class RoomAdmissions:
    def __init__(self, redis_url: str) -> None:
        self.rooms = Rooms(Redis.from_url(redis_url))
        self._service = AdmissionService(self.rooms)

    async def session(self, event_id: uuid.UUID, user_id: str) -> RoomSession:
        ask = admission_pb2.CheckAdmissionRequest(event_id=str(event_id), user_id=user_id)
        status = await self._service.CheckAdmission(ask, _Internal())  # type: ignore[arg-type]
        return RoomSession(status.queued, status.admitted)

    async def open_room(self, event_id: uuid.UUID, **settings: Any) -> None:
        room = Room(str(event_id)).with_changes(**settings)
        assert await self.rooms.create(room, float(room.new_users_per_minute))
