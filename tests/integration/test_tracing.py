"""A service process exporting spans over OTLP to a receiver the test runs:
sampling is honoured (0 exports nothing), health checks and probes start no trace,
and the resource names the service as users will see it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import grpc
import pytest

from groundwork.catalog.v1 import catalog_pb2 as pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_catalog import SERVICE_NAME
from groundwork_cli.runtime import probes
from groundwork_cli.traces import SpanStore, receiver

RECEIVER = "127.78.3.5:4317"
LISTEN = "127.78.3.6:50051"


async def _spans_exported(database_url: str, sampling: str, tmp_path: Path) -> SpanStore:
    store = SpanStore(tmp_path / f"spans-{sampling}.db")
    server = await receiver(RECEIVER, store)
    env = {
        **os.environ,
        "GROUNDWORK_DATABASE_URL": database_url,
        "GROUNDWORK_GRPC_LISTEN": LISTEN,
        "GROUNDWORK_INSTANCE_ID": "catalog-traced",
        "GROUNDWORK_OTLP_ENDPOINT": RECEIVER,
        "GROUNDWORK_TRACE_SAMPLING": sampling,
        "GROUNDWORK_SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "groundwork_catalog", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await probes.wait_until(probes.grpc_health(LISTEN, SERVICE_NAME), 20, "catalog")
        async with grpc.aio.insecure_channel(LISTEN) as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            for _ in range(5):
                await stub.ListEvents(pb.ListEventsRequest(page_size=2), timeout=5)
            # Health checks as the sidecar makes them: none may start a trace.
            for _ in range(3):
                await probes.grpc_health(LISTEN, SERVICE_NAME)()
    finally:
        process.send_signal(signal.SIGTERM)  # flushes what is buffered: no wait for a batch
        assert await asyncio.wait_for(process.wait(), 20) == 0
        await server.stop(1)
    return store


@pytest.mark.parametrize("sampling", ["1", "0"])
async def test_sampling_decides_what_is_exported(
    catalog_db: asyncpg.Pool, fresh_database: str, tmp_path: Path, sampling: str
) -> None:
    store = await _spans_exported(fresh_database, sampling, tmp_path)
    if sampling == "0":
        assert store.count() == 0
        return
    trace_id = store.last_trace("catalog")
    assert trace_id
    spans = store.spans(trace_id)
    assert spans[0].name == "/groundwork.catalog.v1.CatalogService/ListEvents"
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans)
    # Five calls, five traces: no health check, probe or poll started one.
    assert store.root_names() == ["/groundwork.catalog.v1.CatalogService/ListEvents"] * 5
