"""Reading the realtime service's frames as a WebSocket client does (tests only)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


async def frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15) -> dict[str, Any]:
    """The next frame, which must be a JSON text frame."""
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    result: dict[str, Any] = json.loads(message.data)
    return result


async def until_ready(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Frames up to and including Ready (replayed updates and a Reset come before it)."""
    frames = [await frame(ws)]
    while "ready" not in frames[-1]:
        frames.append(await frame(ws))
    return frames
