"""Run one realtime instance: python -m groundwork_realtime"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from groundwork_realtime.hub import Hub
from groundwork_realtime.service import Realtime
from groundwork_realtime.settings import RealtimeSettings
from groundwork_realtime.workers import StreamTail
from groundwork_shared import server, telemetry
from groundwork_shared.redis import connect
from groundwork_shared.server import until_stopped
from groundwork_shared.settings import boot

log = logging.getLogger("groundwork_realtime")


# Handshakes waiting to be accepted. A crowd opens its sockets at once; with
# aiohttp's default (128) a full backlog refused them: a Unix socket does not
# make the connecting side wait as TCP does (the sidecar counted connect_fail).
BACKLOG = 4096


def site(runner: web.AppRunner, listen: str) -> web.BaseSite:
    if listen.startswith("unix:"):
        return web.UnixSite(runner, listen[len("unix:") :], backlog=BACKLOG)
    host, _, port = listen.rpartition(":")
    return web.TCPSite(runner, host, int(port), backlog=BACKLOG)


async def run(settings: RealtimeSettings, stop: asyncio.Event | None = None) -> None:
    redis = connect(settings.redis_url)
    hub = Hub(settings.realtime_client_queue)
    batch = max(1, min(100, settings.realtime_client_queue // 4))
    tail = StreamTail(redis, settings.realtime_stream, hub, batch)
    queue_tail = StreamTail(redis, settings.realtime_queue_stream, hub, batch)
    realtime = Realtime(settings, hub, tail, queue_tail)
    halt = asyncio.Event()
    readers = [asyncio.create_task(t.run(halt)) for t in (tail, queue_tail)]
    # No access log: URLs may carry an access token (?access_token=, for browsers).
    runner = web.AppRunner(realtime.application(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await site(runner, settings.http_listen).start()
    except OSError as error:
        where = f"{settings.http_listen} (GROUNDWORK_HTTP_LISTEN)"
        raise SystemExit(f"cannot listen on {where}: {error}") from error
    streams = [settings.realtime_stream, settings.realtime_queue_stream]
    log.info("serving", extra={"listen": settings.http_listen, "streams": streams})
    await until_stopped(stop)
    log.info("draining")
    await realtime.drain()
    await runner.cleanup()
    halt.set()
    await asyncio.gather(*readers)
    await redis.aclose()
    telemetry.flush()
    log.info("stopped")


if __name__ == "__main__":
    server.run(run(boot("realtime", RealtimeSettings)))
