"""The catalog gRPC server against real Postgres: status codes with details,
health, reflection, and a SIGTERM that drains in-flight calls."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog.seed import seed
from groundwork_catalog.service import CatalogService
from groundwork_cli.runtime import probes
from groundwork_shared import public_api
from groundwork_shared.server import App, serve
from groundwork_shared.settings import ServiceSettings
from tests.conftest import settles

SERVICE = "groundwork.catalog.v1.CatalogService"


@pytest.fixture
async def seeded_db(catalog_db: asyncpg.Pool) -> asyncpg.Pool:
    async with catalog_db.acquire() as conn:
        await seed(conn, now=datetime.now(UTC))
    return catalog_db


@pytest.fixture
async def channel(seeded_db: asyncpg.Pool) -> AsyncIterator[grpc.aio.Channel]:
    listen = "127.78.3.1:50051"
    settings = ServiceSettings(
        instance_id="catalog-test", grpc_listen=listen, shutdown_grace_seconds=1
    )
    service = CatalogService(seeded_db)
    stop = asyncio.Event()
    app = App(
        [SERVICE], lambda s: catalog_pb2_grpc.add_CatalogServiceServicer_to_server(service, s)
    )
    task = asyncio.create_task(serve(settings, app, stop))
    await probes.wait_until(probes.grpc_health(listen, SERVICE), 10, "catalog")
    async with grpc.aio.insecure_channel(listen) as ch:
        yield ch
    stop.set()
    await task


async def test_list_get_and_seat_map(channel: grpc.aio.Channel) -> None:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    page = await stub.ListEvents(pb.ListEventsRequest(page_size=5))
    assert len(page.events) == 5 and page.next_page_token
    second = await stub.ListEvents(
        pb.ListEventsRequest(page_size=5, page_token=page.next_page_token)
    )
    assert {e.event_id for e in page.events}.isdisjoint(e.event_id for e in second.events)
    event = await stub.GetEvent(pb.GetEventRequest(event_id=page.events[0].event_id))
    assert event == page.events[0]
    seats = await stub.GetSeatMap(pb.GetSeatMapRequest(event_id=event.event_id))
    assert len(seats.seats) == event.venue.capacity == seats.available
    assert all(s.status == pb.SEAT_STATUS_AVAILABLE for s in seats.seats)


async def test_errors_carry_codes_and_field_details(channel: grpc.aio.Channel) -> None:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetEvent(pb.GetEventRequest(event_id="00000000-0000-0000-0000-000000000000"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListEvents(pb.ListEventsRequest(page_size=1000, page_token="junk"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["page_size"]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetSeatMap(pb.GetSeatMapRequest(event_id=""))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_nul_and_invalid_utf8_are_refused_with_the_field_named(
    channel: grpc.aio.Channel,
) -> None:
    """Checked once for every API by the common interceptor, before any handler
    (a NUL would reach Postgres; bytes protobuf refuses would leak its error)."""
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListEvents(pb.ListEventsRequest(city="Ber\x00lin"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(info.value) == [("city", "must not contain NUL (U+0000)")]

    raw: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{SERVICE}/GetEvent"
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"\x0a\x01\xff")  # event_id = the single byte 0xff
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(info.value) == [("event_id", "must be valid UTF-8")]
    assert "DecodeError" not in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"\x0a\x09ab")  # a length past the end
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(info.value) == [("request", "is not a valid message")]


async def test_health(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def _reflect(
    channel: grpc.aio.Channel, service: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """One reflection stream (v1 or v1alpha: the same messages on the wire)."""
    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [reply async for reply in call(iter(requests))]


@pytest.mark.parametrize("service", [public_api.REFLECTION_V1, public_api.REFLECTION_V1ALPHA])
async def test_reflection_describes_the_public_api_and_nothing_else(
    channel: grpc.aio.Channel, service: str
) -> None:
    listed, booking, payments = await _reflect(
        channel,
        service,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="groundwork.booking.v1.BookingService"
        ),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="groundwork.payments.v1.PaymentsService"
        ),
    )
    names = [s.name for s in listed.list_services_response.service]
    assert sorted(names) == list(public_api.service_names())
    assert SERVICE in names and "groundwork.payments.v1.PaymentsService" not in names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in booking.file_descriptor_response.file_descriptor_proto
    ]
    assert "groundwork/booking/v1/booking.proto" in [f.name for f in files]
    assert payments.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_sigterm_drains_in_flight_calls(seeded_db: asyncpg.Pool, fresh_database: str) -> None:
    """A call still running when SIGTERM arrives completes; new calls are refused;
    the process then exits 0. (`seeded_db` is the database at `fresh_database`.)"""
    listen = "127.78.3.2:50051"
    env = {
        **os.environ,
        "GROUNDWORK_DATABASE_URL": fresh_database,
        "GROUNDWORK_GRPC_LISTEN": listen,
        "GROUNDWORK_INSTANCE_ID": "catalog-drain",
        "GROUNDWORK_SHUTDOWN_GRACE_SECONDS": "10",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "groundwork_catalog",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    blocker = await asyncpg.connect(fresh_database)
    try:
        await probes.wait_until(probes.grpc_health(listen, SERVICE), 20, "catalog")
        tx = blocker.transaction()
        await tx.start()
        # Hold a lock so the next call is still running when SIGTERM arrives.
        await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        async with grpc.aio.insecure_channel(listen) as ch:
            stub = catalog_pb2_grpc.CatalogServiceStub(ch)
            in_flight = asyncio.ensure_future(stub.ListEvents(pb.ListEventsRequest(page_size=3)))

            async def waiting_on_the_lock() -> None:
                waiting = await blocker.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE application_name = 'groundwork' AND wait_event_type = 'Lock'"""
                )
                assert waiting == 1

            await settles(waiting_on_the_lock, timeout=10, interval=0.05)
            assert not in_flight.done()
            server.send_signal(signal.SIGTERM)

            async def refusing() -> None:  # SIGTERM taken: new calls, even health, refused
                try:
                    await probes.grpc_health(listen, SERVICE)()
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE
                    return
                except probes.NotReady:
                    pass  # NOT_SERVING: draining has begun, accepting has not stopped yet
                raise AssertionError("still accepting calls")

            await settles(refusing, timeout=10, interval=0.05)
            assert server.returncode is None, "exited with a call in flight"
            async with grpc.aio.insecure_channel(listen) as late:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await catalog_pb2_grpc.CatalogServiceStub(late).ListEvents(
                        pb.ListEventsRequest(), timeout=2
                    )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            await tx.rollback()
            reply = await asyncio.wait_for(in_flight, 10)
        assert len(reply.events) == 3
        assert await asyncio.wait_for(server.wait(), 15) == 0
        assert server.stdout is not None
        assert b'"message": "draining"' in await server.stdout.read()
    finally:
        await blocker.close()
        if server.returncode is None:
            server.kill()
            await server.wait()
