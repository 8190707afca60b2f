"""Seat prices from the catalog, fetched through this instance's sidecar (the
mesh routes by :authority and speaks mTLS to the catalog's sidecars)."""

from __future__ import annotations

import uuid

import grpc

from groundwork.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from groundwork_booking.domain import SeatPrice
from groundwork_shared import mesh


class CatalogSeats:
    def __init__(self, outbound: str) -> None:
        self._channel = mesh.channel(outbound, "catalog")
        self._stub = catalog_pb2_grpc.CatalogServiceStub(self._channel)

    async def seats(self, event_id: uuid.UUID) -> list[SeatPrice] | None:
        try:
            event = await self._stub.GetEvent(
                catalog_pb2.GetEventRequest(event_id=str(event_id)), timeout=5
            )
            seat_map = await self._stub.GetSeatMap(
                catalog_pb2.GetSeatMapRequest(event_id=str(event_id)), timeout=10
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return [SeatPrice(s.seat_id, s.price_cents, event.currency) for s in seat_map.seats]

    async def close(self) -> None:
        await self._channel.close()
