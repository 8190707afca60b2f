"""The rooms in Redis: one hash of settings and counters, and three sorted sets,
per event (keys share a {hash tag}, so each script touches one slot):

    waitingroom:{E}:room     settings, the current rate, admission credit, served
    waitingroom:{E}:queue    waiting customers -> pre-queue key in [0, 1) or 1 + arrival
    waitingroom:{E}:active   admitted customers -> their session's end (ms)
    waitingroom:{E}:admits   admitted customers -> when (ms), the last minute's
    waitingroom:{E}:joined   customer -> when they joined (ms)
    waitingroom:{E}:unclaimed  admitted customers who have not read their place since
    waitingroom:rooms        the events that have a room

Every change is one Lua script, atomic in Redis: instances may run the same
admission round at once, and credit accrues by time elapsed since the last
round whoever ran it, so several instances admit no faster than one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from groundwork_waitingroom.domain import CLAIM_SECONDS, Method, Mode, Place, Room

ROOMS = "waitingroom:rooms"
# Rooms with someone waiting or admitted: the only ones an admission round visits
# (an idle room costs nothing). A join adds its room; a round that leaves a room
# with nobody waiting, admitted or admitted in the last minute removes it.
BUSY = "waitingroom:busy"
# Booking's latency histograms at the last adaptive read (any instance's).
BOOKING_BUCKETS = "waitingroom:booking-buckets"
ADAPT_LOCK = "waitingroom:adapt-lock"


def _key(event_id: str, part: str) -> str:
    return f"waitingroom:{{{event_id}}}:{part}"


def keys(event_id: str) -> list[str]:
    parts = ("room", "queue", "active", "admits", "joined", "unclaimed")
    return [_key(event_id, p) for p in parts]


_SETTINGS = (
    "total_active_users",
    "new_users_per_minute",
    "session_seconds",
    "method",
    "opens_at_ms",
    "paused",
    "mode",
    "target_booking_p99_ms",
)

# KEYS: room, rooms; ARGV: event id, then field, value pairs
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# What a customer's place reads, after a join or alone: room fields, the
# session's end, rank, queue length, when they joined (one round trip either way).
# An admitted customer's first read claims the place: the session runs from then
# (until then the place lasts only the claim window; see _ADMIT).
_PLACE = """
-- (A nil would end the reply's array: absent values travel as false, nil in Python.)
local function place(user, now)
  if redis.call('SREM', KEYS[6], user) == 1 then
    local until_ms = redis.call('ZSCORE', KEYS[3], user)
    if until_ms and tonumber(until_ms) > now then
      local session = tonumber(redis.call('HGET', KEYS[1], 'session_seconds'))
      redis.call('ZADD', KEYS[3], now + 1000 * session, user)
    end
  end
  local room = redis.call('HMGET', KEYS[1], 'opens_at_ms', 'served', 'rate', 'paused', 'method')
  return {room[1], room[2] or false, room[3], room[4], room[5],
    redis.call('ZSCORE', KEYS[3], user) or false, redis.call('ZRANK', KEYS[2], user) or false,
    redis.call('ZCARD', KEYS[2]), redis.call('HGET', KEYS[5], user) or false}
end
"""

# KEYS: room; ARGV: field, value pairs -> 0 when there is no such room (a room
# deleted meanwhile is not brought back as a partial hash)
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def _pairs(fields: dict[str, EncodableT]) -> list[str]:
    return [str(x) for item in fields.items() for x in item]


# KEYS: room queue active admits joined unclaimed busy; ARGV: user, now_ms,
# pre-queue key, event id -> false (no room), or the place after joining (idempotent: a second
# join keeps the first place, and an admitted customer stays admitted)
_JOIN = (
    _PLACE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local now = tonumber(ARGV[2])
local until_ms = redis.call('ZSCORE', KEYS[3], ARGV[1])
local admitted = until_ms and tonumber(until_ms) > now
if not admitted and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local score
  if now < tonumber(redis.call('HGET', KEYS[1], 'opens_at_ms')) then
    score = tonumber(ARGV[3])
  else
    score = 1 + redis.call('HINCRBY', KEYS[1], 'arrivals', 1)
  end
  redis.call('ZADD', KEYS[2], score, ARGV[1])
  redis.call('HSET', KEYS[5], ARGV[1], now)
  redis.call('SADD', KEYS[7], ARGV[4])
end
return place(ARGV[1], now)
"""
)

# KEYS: room queue active admits joined unclaimed; ARGV: user, now_ms -> false (no
# room), or the place
_GET_PLACE = (
    _PLACE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return place(ARGV[1], tonumber(ARGV[2]))
"""
)

# KEYS: room queue active admits joined unclaimed busy; ARGV: now_ms, event id,
# claim window (ms) -> {admitted now, served, queue length, active, admitted in the
# last minute, rate*1000, paused, opens_at_ms}
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[7], ARGV[2])
  return false
end
local now = tonumber(ARGV[1])
local ended = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #ended, 1000 do
  redis.call('SREM', KEYS[6], unpack(ended, i, math.min(i + 999, #ended)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)
local c = redis.call('HMGET', KEYS[1], 'paused', 'opens_at_ms', 'total_active_users',
  'rate', 'session_seconds', 'method', 'credit', 'last_ms')
local rate = tonumber(c[4])
local last = tonumber(c[8] or now)
local credit = tonumber(c[7] or 0)
local taken = 0
if c[1] == '0' and now >= tonumber(c[2]) then
  -- Credit for the time since the last round, banked up to a second's worth.
  credit = math.min(credit + (now - last) * rate / 60000, math.max(1, rate / 60))
  local slots = tonumber(c[3]) - redis.call('ZCARD', KEYS[3])
  local n = math.floor(math.min(credit, slots))
  if n > 0 then
    local members = {}
    if c[6] == 'random' then
      members = redis.call('ZRANDMEMBER', KEYS[2], n)
      if #members > 0 then redis.call('ZREM', KEYS[2], unpack(members)) end
    else
      local popped = redis.call('ZPOPMIN', KEYS[2], n)
      for i = 1, #popped, 2 do members[#members + 1] = popped[i] end
    end
    -- Held for the claim window until the customer reads the place (a no-show
    -- frees it then); the session starts at that read.
    local ends = now + math.min(tonumber(ARGV[3]), 1000 * tonumber(c[5]))
    for _, m in ipairs(members) do
      redis.call('ZADD', KEYS[3], ends, m)
      redis.call('ZADD', KEYS[4], now, m)
      redis.call('SADD', KEYS[6], m)
    end
    taken = #members
    credit = credit - taken
    if taken > 0 then redis.call('HINCRBY', KEYS[1], 'served', taken) end
  end
  -- Nobody waiting: no credit saved up for a burst later.
  if redis.call('ZCARD', KEYS[2]) == 0 then credit = math.min(credit, 1) end
else
  credit = 0
end
redis.call('HSET', KEYS[1], 'credit', credit, 'last_ms', now)
local waiting = redis.call('ZCARD', KEYS[2])
if waiting + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4]) == 0 then
  redis.call('SREM', KEYS[7], ARGV[2])
end
return {taken, tonumber(redis.call('HGET', KEYS[1], 'served') or 0),
  redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]),
  math.floor(rate * 1000), tonumber(c[1]), tonumber(c[2])}
"""

# KEYS: room queue active admits joined unclaimed; ARGV: user
_LEAVE = """
local was = redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('SREM', KEYS[6], ARGV[1])
return was
"""


@dataclass(frozen=True)
class Round:
    """One admission round's outcome and the room's figures after it."""

    admitted: int
    served: int
    queue_length: int
    active: int
    admitted_last_minute: int
    rate_per_minute: float
    paused: bool
    opens_at: datetime


@dataclass(frozen=True)
class Session:
    """What booking asks before a hold: does the event queue, and until when (ms)
    is this customer's session live (None: it is not)."""

    queued: bool
    until_ms: int | None


@dataclass(frozen=True)
class Figures:
    room: Room
    rate_per_minute: float
    served: int
    queue_length: int
    active: int
    admitted_last_minute: int
    observed_booking_p99_ms: float


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _room(event_id: str, fields: dict[str, str]) -> Room:
    return Room(
        event_id=event_id,
        total_active_users=int(fields["total_active_users"]),
        new_users_per_minute=int(fields["new_users_per_minute"]),
        session_seconds=int(fields["session_seconds"]),
        method=Method(fields["method"]),
        opens_at=datetime.fromtimestamp(int(fields["opens_at_ms"]) / 1000, UTC),
        paused=fields["paused"] == "1",
        mode=Mode(fields["mode"]),
        target_booking_p99_ms=int(fields["target_booking_p99_ms"]),
    )


def _settings(room: Room) -> dict[str, EncodableT]:
    return {
        "total_active_users": room.total_active_users,
        "new_users_per_minute": room.new_users_per_minute,
        "session_seconds": room.session_seconds,
        "method": room.method.value,
        "opens_at_ms": _ms(room.opens_at),
        "paused": int(room.paused),
        "mode": room.mode.value,
        "target_booking_p99_ms": room.target_booking_p99_ms,
    }


def _place(reply: Any, now: datetime) -> Place | None:
    if not reply:
        return None
    opens, served, rate, paused, method, until, rank, length, joined = reply
    return Place(
        now_ms=_ms(now),
        opens_at_ms=int(opens),
        admitted_until_ms=int(float(until)) if until is not None else None,
        rank=int(rank) if rank is not None else None,
        queue_length=int(length),
        served=int(served or 0),
        rate_per_minute=float(rate),
        paused=paused == b"1",
        method=Method(method.decode()),
        joined_ms=int(joined) if joined is not None else None,
    )


class Rooms:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._update = redis.register_script(_UPDATE)
        self._join = redis.register_script(_JOIN)
        self._get_place = redis.register_script(_GET_PLACE)
        self._admit = redis.register_script(_ADMIT)
        self._leave = redis.register_script(_LEAVE)

    async def create(self, room: Room, rate: float) -> bool:
        """False when the event already has a room (nothing changed)."""
        fields = {**_settings(room), "rate": rate, "served": 0}
        created = await self._create(
            [keys(room.event_id)[0], ROOMS], [room.event_id, *_pairs(fields)]
        )
        return bool(created)

    async def update(self, room: Room, rate: float | None) -> bool:
        """False when the room is gone (nothing written)."""
        fields = _settings(room) | ({"rate": rate} if rate is not None else {})
        return bool(await self._update([keys(room.event_id)[0]], _pairs(fields)))

    async def set_rate(self, event_id: str, rate: float, p99_ms: float | None) -> None:
        fields: dict[str, EncodableT] = {"rate": rate}
        if p99_ms is not None:
            fields["observed_booking_p99_ms"] = round(p99_ms, 1)
        await self._update([keys(event_id)[0]], _pairs(fields))

    async def get(self, event_id: str) -> Figures | None:
        room_key, queue, active, admits, *_ = keys(event_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(room_key)
            pipe.zcard(queue)
            pipe.zcard(active)
            pipe.zcount(admits, _ms(datetime.now(UTC)) - 60_000, "+inf")
            raw, queue_length, active_count, last_minute = await pipe.execute()
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return Figures(
            _room(event_id, fields),
            float(fields["rate"]),
            int(fields.get("served", 0)),
            queue_length,
            active_count,
            last_minute,
            float(fields.get("observed_booking_p99_ms", 0)),
        )

    async def delete(self, event_id: str) -> None:
        await self._redis.srem(ROOMS, event_id)
        await self._redis.srem(BUSY, event_id)
        await self._redis.delete(*keys(event_id))

    async def events(self) -> list[str]:
        return await self._members(ROOMS)

    async def busy(self) -> list[str]:
        """The rooms an admission round has work in (see BUSY)."""
        return await self._members(BUSY)

    async def mark_all_busy(self) -> None:
        """Every room gets one round (at start: a room joined while no round ran,
        or before BUSY existed, is not left waiting)."""
        rooms = await self.events()
        if rooms:
            await self._redis.sadd(BUSY, *rooms)

    async def _members(self, key: str) -> list[str]:
        members = await self._redis.smembers(key)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def join(self, event_id: str, user: str, now: datetime) -> Place | None:
        """The customer's place once in the queue (or admitted); None: no room."""
        # secrets: a customer must not be able to predict (or grind) a good draw.
        draw = secrets.randbelow(2**52) / 2**52
        reply = await self._join([*keys(event_id), BUSY], [user, _ms(now), repr(draw), event_id])
        return _place(reply, now)

    async def leave(self, event_id: str, user: str) -> bool:
        return bool(await self._leave(keys(event_id), [user]))

    async def admit(self, event_id: str, now: datetime) -> Round | None:
        claim_ms = CLAIM_SECONDS * 1000
        reply = await self._admit([*keys(event_id), BUSY], [_ms(now), event_id, claim_ms])
        if reply is None:
            return None
        taken, served, queue_length, active, last_minute, rate, paused, opens = (
            int(x) for x in reply
        )
        opens_at = datetime.fromtimestamp(opens / 1000, UTC)
        return Round(
            taken, served, queue_length, active, last_minute, rate / 1000, paused == 1, opens_at
        )

    async def place(self, event_id: str, user: str, now: datetime) -> Place | None:
        return _place(await self._get_place(keys(event_id), [user, _ms(now)]), now)

    async def session(self, event_id: str, user: str, now: datetime) -> Session:
        """Whether the event has a room, and the customer's live session in it: admitted,
        the place claimed (its token read) and its end still ahead. One round trip,
        read in one MULTI so the three answers are of one moment."""
        room, _, active, _, _, unclaimed = keys(event_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(room)
            pipe.zscore(active, user)
            pipe.sismember(unclaimed, user)
            exists, until, waiting_claim = await pipe.execute()
        live = until is not None and int(until) > _ms(now) and not waiting_claim
        return Session(bool(exists), int(until) if live else None)

    async def adapt_turn(self, interval_ms: int) -> bool:
        """True for the one instance that adapts the rates this interval."""
        return bool(await self._redis.set(ADAPT_LOCK, "1", nx=True, px=interval_ms))

    async def booking_buckets(self) -> dict[str, dict[float, float]]:
        """As last saved: {method: {le: count}} (fields are "method le")."""
        raw = await self._redis.hgetall(BOOKING_BUCKETS)
        buckets: dict[str, dict[float, float]] = {}
        for field, value in raw.items():
            text = field.decode() if isinstance(field, bytes) else str(field)
            method, _, le = text.rpartition(" ")
            buckets.setdefault(method, {})[float(le)] = float(value)
        return buckets

    async def forget_booking_buckets(self) -> None:
        await self._redis.delete(BOOKING_BUCKETS)

    async def save_booking_buckets(self, buckets: dict[str, dict[float, float]]) -> None:
        mapping: dict[FieldT, EncodableT] = {
            f"{method} {le!r}": count
            for method, counts in buckets.items()
            for le, count in counts.items()
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(BOOKING_BUCKETS)
            if mapping:
                pipe.hset(BOOKING_BUCKETS, mapping=mapping)
            await pipe.execute()
