"""gRPC as its users meet it, through the edge of the running mesh: grpcurl and
grpcui against server reflection (the public API and nothing else, no proto
files), a server stream (WatchQueueTicket) that follows a place until admission,
outlives the unary timeouts while a unary call still times out, and frees its
server-side state when the client cancels; and gRPC-Web from Connect's Python
client over HTTP/1.1, as a browser would call it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from connectrpc.client import ConnectClientSync
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.protocol import ProtocolType
from grpc_reflection.v1alpha import reflection_pb2
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    DataReceived,
    PingAckReceived,
    ResponseReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from h2.settings import SettingCodes
from prometheus_client.parser import text_string_to_metric_families

from groundwork.catalog.v1 import catalog_pb2
from groundwork.waitingroom.v1 import waitingroom_pb2 as pb
from groundwork.waitingroom.v1 import waitingroom_pb2_grpc
from groundwork_cli import h2load
from groundwork_cli.runtime import policies
from groundwork_shared import public_api
from tests import edge_flows
from tests.conftest import eventually
from tests.e2e.conftest import Mesh
from tests.e2e.test_traffic_policies import apply_live
from tests.infra.gobuild import binary

WATCH = "/groundwork.waitingroom.v1.WaitingRoomService/WatchQueueTicket"
MISSING_EVENT = "00000000-0000-4000-8000-000000000000"


def grpcurl(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("grpcurl")), "-plaintext", "-max-time", "30", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def admin(mesh: Mesh) -> str:
    return mesh.admin_token()


@pytest.fixture
def channel(mesh: Mesh) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(mesh.plan.edge_http()) as c:
        yield c


def test_grpcurl_lists_describes_and_calls_the_public_api_without_proto_files(
    mesh: Mesh,
) -> None:
    edge = mesh.plan.edge_http()
    listed = grpcurl(mesh, edge, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == list(public_api.service_names())

    described = grpcurl(mesh, edge, "describe", WATCH.strip("/").replace("/", "."))
    assert described.returncode == 0, described.stderr
    assert "returns ( stream .groundwork.waitingroom.v1.QueueTicket )" in described.stdout
    request = grpcurl(mesh, edge, "describe", ".groundwork.catalog.v1.ListEventsRequest")
    assert "int32 page_size" in request.stdout, request.stderr

    # An internal service is not revealed, though its name is known.
    hidden = grpcurl(mesh, edge, "describe", "groundwork.payments.v1.PaymentsService")
    assert hidden.returncode != 0
    assert "Symbol not found" in hidden.stderr

    called = grpcurl(
        mesh, "-d", '{"page_size": 2}', edge, "groundwork.catalog.v1.CatalogService/ListEvents"
    )
    assert called.returncode == 0, called.stderr
    assert len(json.loads(called.stdout)["events"]) == 2


GRPCUI = "127.77.2.20:8070"
LIST_EVENTS = "groundwork.catalog.v1.CatalogService.ListEvents"


@contextlib.contextmanager
def grpcui(mesh: Mesh) -> Iterator[httpx.Client]:
    """grpcui's web UI on the edge, which it knows only through reflection."""
    host, port = GRPCUI.split(":")
    command = [str(binary("grpcui")), "-plaintext", "-open-browser=false"]
    command += ["-bind", host, "-port", port, "-max-time", "30", mesh.plan.edge_http()]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with httpx.Client(base_url=f"http://{GRPCUI}", timeout=30) as client:

            def serving() -> httpx.Response:
                if process.poll() is not None:  # nothing will answer: say why at once
                    raise RuntimeError(f"grpcui exited: {process.communicate()[0]}")
                return client.get("/")

            eventually(serving, timeout=60, errors=(httpx.TransportError,))
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_grpcui_browses_the_public_api_and_calls_it_from_reflection_alone(mesh: Mesh) -> None:
    with grpcui(mesh) as ui:
        page = ui.get("/").text
        for service in public_api.service_names():
            assert f'<option value="{service}">' in page
        assert "PaymentsService" not in page  # the internal services stay hidden

        schema = ui.get("/metadata", params={"method": WATCH.strip("/").replace("/", ".")})
        assert schema.json()["requestType"] == "groundwork.waitingroom.v1.WatchQueueTicketRequest"

        # The page's own call path: its CSRF cookie repeated in a header, the request
        # as JSON, answered with the edge's real response.
        called = ui.post(
            f"/invoke/{LIST_EVENTS}",
            json={"metadata": [], "data": [{"page_size": 2}], "timeout_seconds": 10},
            headers={"x-grpcui-csrf-token": ui.cookies["_grpcui_csrf_token"]},
        )
        assert called.status_code == 200, called.text
        result = called.json()
        assert result["error"] is None, result
        (response,) = result["responses"]
        assert len(response["message"]["events"]) == 2
        forged = ui.post(f"/invoke/{LIST_EVENTS}", json={"data": [{}]})
        assert forged.status_code == 401


@pytest.mark.parametrize("version", [public_api.REFLECTION_V1, public_api.REFLECTION_V1ALPHA])
def test_both_reflection_protocols_answer_at_the_edge(channel: grpc.Channel, version: str) -> None:
    call = channel.stream_stream(
        f"/{version}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    replies = list(
        call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    )
    names = sorted(s.name for s in replies[0].list_services_response.service)
    assert names == list(public_api.service_names())


def _queued(mesh: Mesh, admin: str, customers: int) -> tuple[str, list[str]]:
    """A new event with a paused room and `customers` in its queue, in order."""
    event_id = edge_flows.new_event(mesh.http, admin)
    edge_flows.create_room(
        mesh.http, admin, event_id, paused=True, new_users_per_minute=600, total_active_users=100
    )
    tokens = [mesh.user_token() for _ in range(customers)]
    for token in tokens:
        edge_flows.join(mesh.http, token, event_id)
    return event_id, tokens


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _watch(
    channel: grpc.Channel, token: str, event_id: str, heartbeat: int = 0, timeout: float = 60
) -> Any:
    """The call: iterate it for tickets; also a grpc.Call (cancel, code)."""
    stub = waitingroom_pb2_grpc.WaitingRoomServiceStub(channel)
    request = pb.WatchQueueTicketRequest(event_id=event_id, heartbeat_seconds=heartbeat)
    return stub.WatchQueueTicket(request, metadata=_bearer(token), timeout=timeout)


def _waitingroom_figure(mesh: Mesh, family_name: str) -> float:
    """A figure of WatchQueueTicket, summed over the waiting room's instances."""
    total = 0.0
    for instance in range(mesh.plan.mesh.services["waitingroom"].instances):
        address = mesh.plan.profile.listen_address("waitingroom", instance)
        text = httpx.get(f"http://{address}:{mesh.plan.mesh.ports.metrics}/metrics").text
        for family in text_string_to_metric_families(text):
            if family.name == family_name:
                total += sum(
                    s.value
                    for s in family.samples
                    if s.labels["method"] == WATCH and not s.name.endswith("_created")
                )
    return total


def _open_streams(mesh: Mesh) -> float:
    """WatchQueueTicket streams the waiting room's instances are serving now."""
    return _waitingroom_figure(mesh, "groundwork_rpc_streams_open")


def _written(mesh: Mesh) -> float:
    """Tickets the watches have handed to the transport, since the servers started."""
    return _waitingroom_figure(mesh, "groundwork_rpc_stream_messages")


def test_a_watch_follows_the_place_until_admission_and_then_ends(
    mesh: Mesh, admin: str, channel: grpc.Channel
) -> None:
    event_id, (_, second) = _queued(mesh, admin, 2)
    stream = _watch(channel, second, event_id)
    opening = next(stream)
    assert opening.status == pb.TICKET_STATUS_WAITING and opening.position == 2
    resumed = httpx.patch(
        f"{mesh.http}/v1/rooms/{event_id}", headers=dict(_bearer(admin)), json={"paused": False}
    )
    assert resumed.status_code == 200, resumed.text
    rest = list(stream)  # ends by itself: nothing changes for an admitted customer
    assert rest and rest[-1].status == pb.TICKET_STATUS_ADMITTED
    assert rest[-1].admission_token
    assert all(t.status != pb.TICKET_STATUS_ADMITTED for t in rest[:-1])
    assert stream.code() == grpc.StatusCode.OK


def test_a_watch_refuses_bad_limits_and_an_unknown_room(mesh: Mesh, channel: grpc.Channel) -> None:
    token = mesh.user_token()
    stub = waitingroom_pb2_grpc.WaitingRoomServiceStub(channel)
    bad = pb.WatchQueueTicketRequest(event_id=MISSING_EVENT, heartbeat_seconds=3600)
    with pytest.raises(grpc.RpcError) as info:
        next(stub.WatchQueueTicket(bad, metadata=_bearer(token), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "heartbeat_seconds" in str(info.value.details())
    missing = pb.WatchQueueTicketRequest(event_id=MISSING_EVENT)
    with pytest.raises(grpc.RpcError) as info:
        next(stub.WatchQueueTicket(missing, metadata=_bearer(token), timeout=10))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    # And without a token, the edge refuses it like any authenticated method.
    with pytest.raises(grpc.RpcError) as info:
        next(stub.WatchQueueTicket(missing, timeout=10))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_cancelled_watch_frees_its_server_side_state(
    mesh: Mesh, admin: str, channel: grpc.Channel
) -> None:
    event_id, (token,) = _queued(mesh, admin, 1)
    before = _open_streams(mesh)
    stream = _watch(channel, token, event_id)
    assert next(stream).status == pb.TICKET_STATUS_WAITING
    eventually(lambda: _open_streams(mesh) == before + 1, timeout=10)
    stream.cancel()
    eventually(lambda: _open_streams(mesh) == before, timeout=10)
    assert stream.code() == grpc.StatusCode.CANCELLED


def test_a_stream_outlives_the_unary_timeouts_while_a_unary_call_times_out(
    mesh: Mesh, admin: str, channel: grpc.Channel
) -> None:
    """A policy gives the edge's routes to the waiting room a 1 s timeout and
    delays every call there by 2 s: GetQueueTicket times out at the edge, while a
    watch opened beside it runs on past that and past the mesh's 15 s unary
    route timeout, its heartbeats arriving."""
    event_id, (token,) = _queued(mesh, admin, 1)
    document = (
        "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
        "metadata: {name: slow-waitingroom}\nspec:\n  service: waitingroom\n"
        "  timeout: 1s\n  fault: {delay: {percent: 100, duration: 2s}}\n"
    )
    stub = waitingroom_pb2_grpc.WaitingRoomServiceStub(channel)
    request = pb.GetQueueTicketRequest(event_id=event_id)
    apply_live(mesh, document)
    try:
        started = time.monotonic()
        stream = _watch(channel, token, event_id, heartbeat=1, timeout=60)
        received: list[float] = []
        ended: list[grpc.StatusCode] = []

        def read() -> None:
            with contextlib.suppress(grpc.RpcError):
                received.extend(time.monotonic() - started for _ in stream)
            ended.append(stream.code())

        reader = threading.Thread(target=read)
        reader.start()
        with pytest.raises(grpc.RpcError) as info:
            stub.GetQueueTicket(request, metadata=_bearer(token), timeout=30)
        assert "upstream request timeout" in str(info.value.details())
        # The stream runs on past both timeouts (1 s here, 15 s by default).
        eventually(lambda: bool(received) and received[-1] > 17, timeout=40)
        assert not ended
        stream.cancel()
        reader.join(timeout=10)
        assert ended == [grpc.StatusCode.CANCELLED]
        assert len(received) >= 10  # a heartbeat a second, after the 2 s delay
    finally:
        policies.delete(mesh.plan, "slow-waitingroom")
    eventually(
        lambda: stub.GetQueueTicket(request, metadata=_bearer(token), timeout=10),
        timeout=30,
        errors=(grpc.RpcError,),
    )


def _text(headers: Any) -> dict[str, str]:
    return {str(name): str(value) for name, value in headers}


class WindowedCall:
    """One gRPC call over a raw HTTP/2 connection (h2) whose receive window the
    test shuts and opens itself, which no gRPC library lets its caller do."""

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.socket = socket.create_connection((host, int(port)), timeout=10)
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        # Nothing may be sent on a new stream until the client opens its window.
        self.h2.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 0})
        self.headers: dict[str, str] = {}
        self.trailers: dict[str, str] = {}
        self.data = bytearray()
        self.settled = self.ended = self.pinged = False
        self.stream = 0
        self._flush()
        self.pump_until(lambda: self.settled)

    def _flush(self) -> None:
        self.socket.sendall(self.h2.data_to_send())

    def pump_until(self, done: Callable[[], bool], timeout: float = 30) -> None:
        """Read what the edge sends until `done()` (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            assert left > 0, f"not done in {timeout}s: {self.headers} {len(self.data)} bytes"
            self.socket.settimeout(min(left, 0.2))
            try:
                chunk = self.socket.recv(65536)
            except TimeoutError:
                continue
            assert chunk, "the edge closed the connection"
            for event in self.h2.receive_data(chunk):
                self._handle(event)
            self._flush()

    def _handle(self, event: Any) -> None:
        if isinstance(event, SettingsAcknowledged):
            self.settled = True
        elif isinstance(event, PingAckReceived):
            self.pinged = False
        elif isinstance(event, ResponseReceived):
            self.headers = _text(event.headers)
        elif isinstance(event, DataReceived):
            self.data += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, TrailersReceived):
            self.trailers = _text(event.headers)
        elif isinstance(event, StreamEnded | StreamReset):
            self.ended = True

    def call(self, path: str, message: bytes, token: str) -> None:
        self.stream = self.h2.get_next_available_stream_id()
        authority = self.socket.getpeername()
        request = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"{authority[0]}:{authority[1]}"),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("authorization", f"Bearer {token}"),
        ]
        self.h2.send_headers(self.stream, request)
        self.h2.send_data(self.stream, h2load.grpc_frame(message), end_stream=True)
        self._flush()

    def sync(self) -> None:
        """Read everything the edge sent before it answers a PING: frames arrive in
        order on the connection, so this waits on the edge, not on a clock."""
        self.h2.ping(b"groundwk")
        self.pinged = True
        self._flush()
        self.pump_until(lambda: not self.pinged)

    def open_window(self) -> None:
        self.h2.increment_flow_control_window(1 << 20, self.stream)
        self._flush()

    def messages(self) -> list[bytes]:
        """The gRPC messages received so far (length-prefixed, uncompressed)."""
        found, at = [], 0
        while at + 5 <= len(self.data):
            size = int.from_bytes(self.data[at + 1 : at + 5], "big")
            if at + 5 + size > len(self.data):
                break
            found.append(bytes(self.data[at + 5 : at + 5 + size]))
            at += 5 + size
        return found

    def close(self) -> None:
        self.socket.close()


def test_a_watch_waits_for_a_shut_window_and_then_delivers_every_change_in_order(
    mesh: Mesh, admin: str
) -> None:
    """HTTP/2 flow control through the edge and the sidecar: a client that gives
    its stream no window gets the response headers and no data, though the server
    has written each change of its place meanwhile (its counter says so); the
    stream stays open, and once the window opens every ticket arrives, in order,
    and the stream ends with the admission."""
    event_id, (token,) = _queued(mesh, admin, 1)
    eventually(lambda: _open_streams(mesh) == 0, timeout=30)  # so the counter is ours
    written = _written(mesh)
    call = WindowedCall(mesh.plan.edge_http())
    try:
        request = pb.WatchQueueTicketRequest(event_id=event_id)  # heartbeats: 15 s
        call.call(WATCH, request.SerializeToString(), token)
        call.pump_until(lambda: bool(call.headers))
        assert call.headers[":status"] == "200", call.headers

        def server_wrote(tickets: int) -> None:
            eventually(lambda: _written(mesh) >= written + tickets, timeout=20)

        server_wrote(1)  # the opening ticket
        for behind in (1, 2):  # customers join behind: the queue grows, a ticket each
            edge_flows.join(mesh.http, mesh.user_token(), event_id)
            server_wrote(1 + behind)
            call.sync()
            assert not call.data and not call.ended, (behind, call.data, call.trailers)

        call.open_window()
        call.pump_until(lambda: len(call.messages()) >= 3)
        tickets = [pb.QueueTicket.FromString(m) for m in call.messages()]
        # Then only heartbeats (every 15 s) of the last place, if a slow run saw one.
        assert [(t.status, t.position, t.queue_length) for t in tickets] == [
            (pb.TICKET_STATUS_WAITING, 1, length) for length in (1, 2, 3, *[3] * (len(tickets) - 3))
        ]
        resumed = httpx.patch(
            f"{mesh.http}/v1/rooms/{event_id}", headers=dict(_bearer(admin)), json={"paused": False}
        )
        assert resumed.status_code == 200, resumed.text
        call.pump_until(lambda: call.ended)
        last = pb.QueueTicket.FromString(call.messages()[-1])
        assert last.status == pb.TICKET_STATUS_ADMITTED and last.admission_token
        assert call.trailers.get("grpc-status") == "0", call.trailers
    finally:
        call.close()
    eventually(lambda: _open_streams(mesh) == 0, timeout=30)


def _web_method(
    name: str, request: type, response: type, stream: StreamType
) -> MethodInfo[Any, Any]:
    service, method = name.strip("/").split("/")
    return MethodInfo(
        name=method,
        service_name=service,
        input=request,
        output=response,
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=stream,
    )


def test_grpc_web_from_connects_client_over_http1(mesh: Mesh, admin: str) -> None:
    event_id, (token,) = _queued(mesh, admin, 1)
    list_events = _web_method(
        "/groundwork.catalog.v1.CatalogService/ListEvents",
        catalog_pb2.ListEventsRequest,
        catalog_pb2.ListEventsResponse,
        StreamType.UNARY,
    )
    get_event = _web_method(
        "/groundwork.catalog.v1.CatalogService/GetEvent",
        catalog_pb2.GetEventRequest,
        catalog_pb2.Event,
        StreamType.UNARY,
    )
    watch = _web_method(WATCH, pb.WatchQueueTicketRequest, pb.QueueTicket, StreamType.SERVER_STREAM)
    with ConnectClientSync(
        mesh.http,
        protocol=ProtocolType.GRPC_WEB,
        codec=google_protobuf_binary_codec(),
        send_compression=None,
        timeout_ms=20_000,
    ) as client:
        page = client.execute_unary(
            request=catalog_pb2.ListEventsRequest(page_size=3), method=list_events
        )
        assert len(page.events) == 3
        with pytest.raises(ConnectError) as info:
            client.execute_unary(
                request=catalog_pb2.GetEventRequest(event_id=MISSING_EVENT), method=get_event
            )
        assert info.value.code is Code.NOT_FOUND
        stream = client.execute_server_stream(
            request=pb.WatchQueueTicketRequest(event_id=event_id, max_seconds=2),
            method=watch,
            headers={"authorization": f"Bearer {token}"},
        )
        tickets = list(stream)  # the first at once; the stream ends after max_seconds
    assert tickets and tickets[0].status == pb.TICKET_STATUS_WAITING
    assert tickets[0].position == 1
