"""In-process fan-out: one bounded queue per connected client, by topic.

The stream is read once per instance (see workers.py) and every update is offered
to the queues of its topic without waiting: a client whose queue is full is
dropped rather than allowed to slow the others down or grow memory."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from groundwork_realtime.updates import Routed
from groundwork_shared.metrics import WEBSOCKETS_DROPPED


class Subscriber:
    def __init__(self, topic: str, queue_size: int) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[Routed] = asyncio.Queue(maxsize=queue_size)
        # Set when the queue overflowed: the connection must be closed.
        self.overflowed = asyncio.Event()


class Hub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._topics: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self.dropped = 0  # clients dropped for being too slow, since start

    def subscribe(self, topic: str) -> Subscriber:
        subscriber = Subscriber(topic, self._queue_size)
        self._topics[topic].add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        members = self._topics.get(subscriber.topic)
        if members is None:
            return
        members.discard(subscriber)
        if not members:
            del self._topics[subscriber.topic]

    def dispatch(self, routed: Routed) -> None:
        for subscriber in list(self._topics.get(routed.topic, ())):
            try:
                subscriber.queue.put_nowait(routed)
            except asyncio.QueueFull:
                self.unsubscribe(subscriber)
                subscriber.overflowed.set()
                self.dropped += 1
                WEBSOCKETS_DROPPED.inc()

    @property
    def subscribers(self) -> int:
        return sum(len(members) for members in self._topics.values())
