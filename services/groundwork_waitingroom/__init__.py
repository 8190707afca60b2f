"""Waiting room: a virtual queue per on-sale event in front of booking's holds,
in Redis, admitting at a configured or adaptive rate with signed admission
tokens the edge verifies."""

SERVICE_NAME = "groundwork.waitingroom.v1.WaitingRoomService"
# Where each admission round that moved something is published (realtime follows it).
STREAM = "waitingroom"
