"""End-to-end tests drive a real local mesh, started with the real CLI
(`groundwork up`) on its own loopback addresses (127.77.x.y) and state directory,
so it can run beside a developer's mesh on 127.0.x.y."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from groundwork_cli.runtime import envoy_admin
from groundwork_cli.runtime.plan import Plan, build, service_database_url
from groundwork_cli.runtime.secrets import ADMIN_EMAIL
from groundwork_cli.runtime.settings import RuntimeSettings
from groundwork_cli.traces import SpanStore, receiver
from groundwork_identity.keys import SigningKey
from tests import edge_flows

GROUNDWORK = [sys.executable, "-m", "groundwork_cli"]
PASSWORD = edge_flows.PASSWORD


def envoy_stat(admin: str, name: str) -> int:
    """One counter or gauge of the Envoy whose admin listens at `admin` (0 if absent)."""
    text = envoy_admin.get(admin, "/stats", filter=f"^{name}$").text
    return int(text.split(":")[1]) if text.strip() else 0


@dataclass(frozen=True)
class Mesh:
    plan: Plan
    env: dict[str, str]

    @property
    def http(self) -> str:
        return f"http://{self.plan.edge_http()}"

    @property
    def https(self) -> str:
        return f"https://{self.plan.edge_https()}"

    @property
    def ca(self) -> str:
        return str(self.plan.layout.pki / "ca.crt")

    def admin_password(self) -> str:
        return self.plan.secrets.admin_password()

    def login(self, email: str, password: str) -> dict[str, Any]:
        return edge_flows.login(self.http, email, password)

    def client_from(self, source: str) -> httpx.Client:
        """An HTTP client of the edge speaking from loopback address `source`: a
        client of its own to the edge's per-address limits."""
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.http, timeout=10, transport=transport)

    def admin_token(self) -> str:
        return str(self.login(ADMIN_EMAIL, self.admin_password())["access_token"])

    def user_token(self) -> str:
        return edge_flows.new_user_token(self.http)

    def signing_key(self) -> tuple[str, bytes]:
        """(kid, private PEM) of identity's current key, read as identity reads it, so
        tests can mint tokens with a valid signature and bad claims."""
        from groundwork_identity.keys import current, decrypt

        async def load() -> tuple[str, bytes]:
            conn = await asyncpg.connect(service_database_url(self.plan, "identity"))
            try:
                rows = await conn.fetch("SELECT kid, private_key, active_from FROM signing_keys")
            finally:
                await conn.close()
            keys = [SigningKey(r["kid"], r["private_key"], {}, r["active_from"]) for r in rows]
            key = current(keys, datetime.now(UTC))
            assert key is not None
            return key.kid, decrypt(self.plan.secrets.identity_kek(), key.private_pem)

        return asyncio.run(load())

    def purchase(self, event_index: int, seat: str) -> tuple[str, str, str]:
        """Hold, order and pay through the edge; returns (pay's trace id, order id, the
        buyer's token)."""
        token = self.user_token()
        trace_id, order_id = edge_flows.purchase(self.http, token, event_index, seat)
        return trace_id, order_id, token

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*GROUNDWORK, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"groundwork {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    @contextmanager
    def running(self) -> Iterator[Mesh]:
        """`groundwork up` for the block, then down; its state is purged unless
        GROUNDWORK_TEST_KEEP_STATE=1 keeps logs and data for a post-mortem."""
        try:
            self.cli("up")
            yield self
        finally:
            purge = [] if os.environ.get("GROUNDWORK_TEST_KEEP_STATE") else ["--purge"]
            result = self.cli("down", *purge, check=False)
            if result.returncode != 0:
                sys.stderr.write(result.stdout + result.stderr)


def make_mesh(state_dir: Path, net: int, **settings: str) -> Mesh:
    """A mesh on 127.<net>.x.y with its state in `state_dir`; `settings` are runtime
    settings (GROUNDWORK_<NAME>) given to the plan and to every CLI call alike."""
    # No Jaeger from the developer's PATH unless a test names one.
    chosen = {"state_dir": str(state_dir), "loopback_net": str(net), "jaeger": "off", **settings}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDWORK_")}
    env.update({f"GROUNDWORK_{k.upper()}": v for k, v in chosen.items()})
    env["GROUNDWORK_START_TIMEOUT"] = "90"
    return Mesh(build(RuntimeSettings.model_validate(chosen)), env)


class _Gated:
    """A span store whose writes wait while the gate is shut: the receiver's one
    loop blocks in it, as a collector that has stopped keeping up."""

    def __init__(self, store: SpanStore) -> None:
        self.store = store
        self.open = threading.Event()
        self.open.set()

    def add(self, request: ExportTraceServiceRequest) -> None:
        self.open.wait()
        self.store.add(request)


class Receiver:
    """An OTLP/gRPC receiver run by the test itself, on its own thread and loop."""

    def __init__(self, listen: str, db: Path) -> None:
        self.listen = listen
        self.store = SpanStore(db)
        self._gate = _Gated(self.store)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            receiver(self.listen, self._gate), self._loop
        ).result(10)
        return self

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """For the block, the receiver takes exports and answers none."""
        self._gate.open.clear()
        try:
            yield
        finally:
            self._gate.open.set()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(1), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with Receiver("127.77.2.9:4317", tmp_path_factory.mktemp("traces") / "spans.db") as running:
        yield running


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory, traces: Receiver) -> Iterator[Mesh]:
    # Every service and Envoy export to the test's own receiver.
    shared = make_mesh(tmp_path_factory.mktemp("mesh"), 77, otlp_endpoint=traces.listen)
    # The suite logs in far more often than a person; test_rate_limits checks limits.
    shared.env["GROUNDWORK_RATELIMIT_AUTH_PER_MINUTE"] = "100000"
    with shared.running():
        yield shared
