"""What the edge's server reflection reveals: the services the edge routes, every
type their methods use, and no internal service."""

from __future__ import annotations

from groundwork_envoy.access import methods
from groundwork_envoy.model import load_mesh
from groundwork_shared import public_api


def test_the_public_api_is_what_the_edge_routes() -> None:
    mesh = load_mesh()
    routed = sorted(
        name
        for svc in mesh.public_services().values()
        for name in svc.grpc_services
        if methods(name)  # every method declares its access
    )
    assert list(public_api.service_names()) == routed
    assert "groundwork.payments.v1.PaymentsService" not in routed


def test_the_reflection_pool_resolves_every_public_method_and_holds_no_internal_service() -> None:
    pool = public_api.pool()
    for name in public_api.service_names():
        service = pool.FindServiceByName(name)
        for method in service.methods:
            assert pool.FindMessageTypeByName(method.input_type.full_name)
            assert pool.FindMessageTypeByName(method.output_type.full_name)
    internal = [
        "groundwork.payments.v1.PaymentsService",
        "envoy.service.ratelimit.v3.RateLimitService",
        "grpc.health.v1.Health",
    ]
    for name in internal:
        try:
            pool.FindServiceByName(name)
        except KeyError:
            continue
        raise AssertionError(f"{name} is revealed")


def test_the_stream_is_in_the_public_api() -> None:
    watch = public_api.pool().FindMethodByName(
        "groundwork.waitingroom.v1.WaitingRoomService.WatchQueueTicket"
    )
    assert watch.server_streaming and not watch.client_streaming


def test_reflection_finds_a_methods_file_as_grpcurl_describe_asks() -> None:
    found = public_api._MethodsResolve(public_api.pool())
    method = "groundwork.waitingroom.v1.WaitingRoomService.WatchQueueTicket"
    assert (
        found.FindFileContainingSymbol(method).name == "groundwork/waitingroom/v1/waitingroom.proto"
    )
    for unknown in (
        "groundwork.waitingroom.v1.WaitingRoomService.NoSuchMethod",
        "groundwork.payments.v1.PaymentsService.Charge",
    ):
        try:
            found.FindFileContainingSymbol(unknown)
        except KeyError:
            continue
        raise AssertionError(f"{unknown} was found")
