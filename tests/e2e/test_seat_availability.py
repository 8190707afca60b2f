"""Seat maps that cost kilobytes, and HTTP done properly for them at the edge:
layout + availability, compression, ETags and 304, HEAD, the micro-cache, and
versions that continue on the WebSocket without a gap. Through the real edge."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
import uuid
from typing import Any

import aiohttp
import brotli  # type: ignore[import-untyped]
import httpx

from groundwork_shared import positions
from tests import edge_flows
from tests.conftest import eventually, settles
from tests.e2e.conftest import Mesh, envoy_stat
from tests.live import frame, until_ready

STATE = {0: "available", 1: "held", 2: "sold"}


def _largest_event(mesh: Mesh) -> dict[str, Any]:
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 100}).json()["events"]
    largest: dict[str, Any] = max(events, key=lambda e: (e["venue"]["capacity"], e["event_id"]))
    return largest


def _event_at(mesh: Mesh, index: int) -> str:
    events = httpx.get(f"{mesh.http}/v1/events", params={"page_size": index + 1}).json()
    return str(events["events"][index]["event_id"])


def _states(availability: dict[str, Any]) -> list[str]:
    packed = base64.b64decode(availability["states"])
    n = availability["seat_count"]
    return [STATE[(packed[i // 4] >> (2 * (i % 4))) & 3] for i in range(n)]


def _index(layout: dict[str, Any], seat_id: str) -> int:
    section, row, number = seat_id.split("-")
    for s in layout["sections"]:
        for r in s["rows"]:
            if s["name"] == section and r["label"] == row:
                return int(r["first_index"]) + int(r["numbers"].index(int(number)))
    raise AssertionError(f"{seat_id} not in the layout")


def test_a_seat_map_costs_kilobytes(mesh: Mesh) -> None:
    event = _largest_event(mesh)
    base = f"{mesh.http}/v1/events/{event['event_id']}"
    capacity = event["venue"]["capacity"]
    availability = httpx.get(f"{base}/availability")
    assert availability.status_code == 200, availability.text
    body = availability.json()
    assert body["seat_count"] == capacity
    assert len(base64.b64decode(body["states"])) == (capacity + 3) // 4
    if capacity >= 5000:
        # Uncompressed, and whatever the seats' states: two bits a seat.
        assert len(availability.content) <= 4096
    assert availability.headers["cache-control"] == "public, max-age=1"

    layout = httpx.get(f"{base}/layout", headers={"accept-encoding": "identity"})
    version = layout.json()["layout_version"]
    assert layout.headers["etag"] == f'"{version}"'  # strong (uncompressed)
    assert sum(len(r["numbers"]) for s in layout.json()["sections"] for r in s["rows"]) == capacity
    versioned = httpx.get(f"{base}/layouts/{version}")
    assert versioned.json() == layout.json()
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    gone = httpx.get(f"{base}/layouts/0000000000000000")
    assert gone.status_code == 404 and "not the event's current layout" in gone.json()["message"]

    # The full seat map is still served (public API), built from the two.
    seat_map = httpx.get(f"{base}/seats").json()
    assert len(seat_map["seats"]) == capacity
    assert seat_map["available"] == body["available"]


def test_compressed_answers_decode_to_the_same_json(mesh: Mesh) -> None:
    base = f"{mesh.http}/v1/events/{_largest_event(mesh)['event_id']}"
    for path in ("/layout", "/seats", "/availability"):
        plain = httpx.get(base + path, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers
        # Raw bytes (no client-side decoding) to see what crossed the wire.
        for encoding, decode in (("gzip", gzip.decompress), ("br", brotli.decompress)):
            with httpx.stream("GET", base + path, headers={"accept-encoding": encoding}) as r:
                raw = b"".join(r.iter_raw())
                headers = r.headers
            assert headers["content-encoding"] == encoding, path
            assert len(raw) < len(plain.content) / 3, (path, encoding, len(raw))
            reply = json.loads(decode(raw))
            if path == "/availability" and reply["version"] != plain.json()["version"]:
                continue  # a sale moved on between the two reads
            if path != "/seats" or reply["available"] == plain.json()["available"]:
                assert reply == plain.json(), (path, encoding)
            # The compressed copy is not byte-identical: its validator is weak.
            assert headers["etag"] == "W/" + plain.headers["etag"]
        zstd = httpx.get(base + path, headers={"accept-encoding": "zstd"})
        assert zstd.headers["content-encoding"] == "zstd"
    # REST that is not micro-cached keeps the filters of the route it came in on,
    # though after transcoding it reaches a gRPC route, where they are not made.
    listed = httpx.get(
        f"{mesh.http}/v1/events", params={"page_size": 50}, headers={"accept-encoding": "gzip"}
    )
    assert listed.headers["content-encoding"] == "gzip", listed.headers


def test_etags_answer_304_and_head_works_wherever_get_does(mesh: Mesh) -> None:
    event_id = _largest_event(mesh)["event_id"]
    base = f"{mesh.http}/v1/events/{event_id}"
    with httpx.Client(base_url=base, http2=False) as client:
        for path in ("/layout", "/availability"):
            first = client.get(path)
            etag = first.headers["etag"]
            again = client.get(path, headers={"if-none-match": etag})
            if again.status_code == 200:  # availability moved on in between
                assert again.headers["etag"] != etag
                continue
            assert again.status_code == 304 and again.content == b""
            weak = client.get(
                path, headers={"if-none-match": f'"nope", W/{etag}', "accept-encoding": "gzip"}
            )
            assert weak.status_code in (304, 200) and (
                weak.status_code == 304 or weak.headers["etag"] != f"W/{etag}"
            )
            assert client.get(path, headers={"if-none-match": '"other"'}).status_code == 200
    for url in (
        f"{base}/layout",
        f"{base}/availability",
        f"{base}/seats",
        base,
        f"{mesh.http}/v1/events",
    ):
        head = httpx.head(url, headers={"accept-encoding": "identity"})
        assert head.status_code == 200, (url, head.text)
        assert head.content == b"" and head.headers["content-type"] == "application/json", url
    assert httpx.head(f"{mesh.http}/v1/events/{uuid.uuid4()}").status_code == 404


def test_a_crowd_costs_one_upstream_read_per_interval(mesh: Mesh) -> None:
    # A new event: a key of its own (the cache keys no query string).
    url = (
        f"{mesh.http}/v1/events/{edge_flows.new_event(mesh.http, mesh.admin_token())}/availability"
    )
    before = envoy_stat(mesh.plan.edge_admin(), "cluster.public_reads.upstream_rq_total")
    seconds: set[int] = set()
    cached = 0

    async def crowd() -> None:
        nonlocal cached
        async with httpx.AsyncClient(http2=False, limits=httpx.Limits(max_connections=8)) as c:
            for _ in range(40):
                replies = await asyncio.gather(*(c.get(url) for _ in range(8)))
                seconds.add(int(time.monotonic()))
                assert all(r.status_code == 200 for r in replies)
                cached += sum("age" in r.headers for r in replies)

    asyncio.run(crowd())
    upstream = envoy_stat(mesh.plan.edge_admin(), "cluster.public_reads.upstream_rq_total") - before
    # A miss at each expiry, plus the readers that arrived together with one.
    assert upstream <= 8 * (len(seconds) + 1), (upstream, len(seconds))
    assert cached >= 320 - upstream


def test_authenticated_requests_are_never_stored(mesh: Mesh) -> None:
    url = (
        f"{mesh.http}/v1/events/{edge_flows.new_event(mesh.http, mesh.admin_token())}/availability"
    )
    auth = {"authorization": f"Bearer {mesh.user_token()}"}
    for _ in range(3):
        reply = httpx.get(url, headers=auth)
        assert reply.status_code == 200 and "age" not in reply.headers
    # Nothing of those was stored: the first anonymous read of the key is a miss.
    assert "age" not in httpx.get(url).headers
    # A read with a query string is never stored either (one key per invented value).
    for _ in range(3):
        assert "age" not in httpx.get(f"{url}?since_version=0-{uuid.uuid4().int % 10**9}").headers


def test_availability_follows_the_sale_and_continues_on_the_websocket(mesh: Mesh) -> None:
    event_id = _event_at(mesh, 12)
    base = f"{mesh.http}/v1/events/{event_id}"
    layout = httpx.get(f"{base}/layout").json()
    seat = "UPPER-R02-017" if "UPPER" in {s["name"] for s in layout["sections"]} else None
    if seat is None:
        last = layout["sections"][-1]
        seat = f"{last['name']}-{last['rows'][1]['label']}-{last['rows'][1]['numbers'][16]:03d}"
    index = _index(layout, seat)
    token = mesh.user_token()
    ws_url = mesh.http.replace("http://", "ws://") + f"/v1/live/events/{event_id}/seats"

    async def read(at: str) -> dict[str, Any]:
        """The availability once it reflects stream position `at` (a frame's id)."""
        async with httpx.AsyncClient() as c:
            body: dict[str, Any] = (await c.get(f"{base}/availability")).json()
        assert positions.parse(body["version"]) >= positions.parse(at)
        return body

    async def sale() -> None:
        async with httpx.AsyncClient() as c:
            start = (await c.get(f"{base}/availability")).json()
        assert _states(start)[index] == "available"
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{ws_url}?last_event_id={start['version']}") as ws,
            httpx.AsyncClient(
                base_url=mesh.http, headers={"authorization": f"Bearer {token}"}, timeout=20
            ) as api,
        ):
            await until_ready(ws)
            key = uuid.uuid4().hex
            hold = await api.post(
                "/v1/holds",
                json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": f"h-{key}"},
            )
            assert hold.status_code == 200, hold.text
            held = await frame(ws)
            assert held["seats"]["seat_ids"] == [seat]
            assert positions.parse(held["id"]) > positions.parse(start["version"])
            # The frame's id is the version an availability read reflects it at.
            now = await settles(lambda: read(held["id"]))
            assert _states(now)[index] == "held"

            released = await api.post(
                f"/v1/holds/{hold.json()['hold_id']}:release", json={"idempotency_key": f"r-{key}"}
            )
            assert released.status_code == 200, released.text
            freed = await frame(ws)
            now = await settles(lambda: read(freed["id"]))
            assert _states(now)[index] == "available"
            # From the hold's version on, only the change that followed.
            since = {"since_version": held["id"]}
            changes = (await api.get(f"{base}/availability", params=since)).json()
            assert changes["incremental"] and changes["states"] == ""
            assert [(c["version"], c["status"]) for c in changes["changes"]] == [
                (freed["id"], "SEAT_STATUS_AVAILABLE")
            ]
            assert changes["changes"][0]["seat_indexes"] == [index]

            hold = await api.post(
                "/v1/holds",
                json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": f"h2-{key}"},
            )
            order = await api.post(
                "/v1/orders",
                json={"hold_id": hold.json()["hold_id"], "idempotency_key": f"o-{key}"},
            )
            order_id = order.json()["order_id"]
            paid = await api.post(
                f"/v1/orders/{order_id}:pay",
                json={"card_token": "tok_approve", "idempotency_key": f"p-{key}"},
            )
            assert paid.status_code == 200, paid.text
            sold_frame = await frame(ws)
            while sold_frame["seats"]["state"] != "SEAT_STATE_SOLD":
                sold_frame = await frame(ws)
            now = await settles(lambda: read(sold_frame["id"]))
            assert _states(now)[index] == "sold"

    asyncio.run(sale())


def test_the_event_page_is_micro_cached_and_follows_a_hold(mesh: Mesh) -> None:
    """GET /v1/events/{id} is what a crowd reloads: the edge answers it from its
    micro-cache (an `age` header), and a hold shows in seats_available within
    the interval."""
    event_id = edge_flows.new_event(mesh.http, mesh.admin_token(), "Micro-cached Page")
    url = f"{mesh.http}/v1/events/{event_id}"
    first = httpx.get(url)
    assert first.status_code == 200 and first.headers["cache-control"] == "public, max-age=1"
    total = first.json()["seats_available"]

    def served_from_cache() -> None:
        replies = [httpx.get(url) for _ in range(3)]
        assert any("age" in r.headers for r in replies)

    eventually(served_from_cache, timeout=10)
    seats = httpx.get(f"{url}/seats").json()["seats"]
    held = httpx.post(
        f"{mesh.http}/v1/holds",
        headers={"authorization": f"Bearer {mesh.user_token()}"},
        json={
            "event_id": event_id,
            "seat_ids": [seats[0]["seat_id"]],
            "idempotency_key": f"h-{uuid.uuid4()}",
        },
    )
    assert held.status_code == 200, held.text

    def shows_the_hold() -> None:
        assert httpx.get(url).json()["seats_available"] == total - 1

    eventually(shows_the_hold, timeout=15)
