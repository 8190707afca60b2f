"""Booking's latency, read from booking's own Prometheus metrics: the histogram
groundwork_rpc_duration_seconds of the calls an admitted customer makes (hold,
order, pay), summed over every instance an address resolves to (a headless
Service on Kubernetes names them all)."""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

METRIC = "groundwork_rpc_duration_seconds"
# What an admitted customer calls: a slow payment network slows the sale as
# surely as slow holds do.
METHODS = tuple(
    f"/groundwork.booking.v1.BookingService/{m}" for m in ("HoldSeats", "CreateOrder", "PayOrder")
)
# method -> {le: cumulative count}
Buckets = dict[str, dict[float, float]]


def method_buckets(text: str, methods: tuple[str, ...] = METHODS) -> Buckets:
    """The cumulative buckets of each method's histogram in a /metrics page."""
    buckets: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            method = sample.labels.get("method", "")
            if sample.name == METRIC + "_bucket" and method in methods:
                le = float(sample.labels["le"])
                counts = buckets.setdefault(method, {})
                counts[le] = counts.get(le, 0.0) + sample.value
    return buckets


async def _addresses(url: str) -> list[str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = sorted({info[4][0] for info in infos})
    return [urlunsplit(parts._replace(netloc=f"{ip}:{port}")) for ip in found]


class BookingLatency:
    def __init__(self, urls: list[str]) -> None:
        self._urls = urls
        self._session: aiohttp.ClientSession | None = None

    async def buckets(self) -> Buckets | None:
        """Every instance's buckets summed; None when no instance answered."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        total: Buckets = {}
        answered = 0
        for url in self._urls:
            try:
                targets = await _addresses(url)
            except OSError as error:
                log.warning("booking metrics unresolvable", extra={"url": url, "error": str(error)})
                continue
            for target in targets:
                try:
                    async with self._session.get(target) as response:
                        text = await response.text()
                except (aiohttp.ClientError, TimeoutError) as error:
                    log.warning(
                        "booking metrics unreachable", extra={"url": target, "error": repr(error)}
                    )
                    continue
                answered += 1
                for method, counts in method_buckets(text).items():
                    into = total.setdefault(method, {})
                    for le, count in counts.items():
                        into[le] = into.get(le, 0.0) + count
        return total if answered else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
