"""The edge's micro-cache holds an entry per resource that exists, never one per
value a client invents: a Host the edge does not serve is a 421 before any
filter stores anything, the cache key leaves the host out, and a query string,
a percent-encoding or another spelling of an id goes the uncached way. 10,000
distinct keys leave the edge's memory within a stated bound."""

from __future__ import annotations

import uuid

import httpx

from tests import edge_flows
from tests.e2e.conftest import Mesh, envoy_stat

# What 10,000 invented keys may add to the edge's heap (tcmalloc's allocated
# bytes): 2,000 distinct Hosts alone used to add 29 MiB that stayed.
BOUND_BYTES = 4 * 1024 * 1024
KEYS = 10_000
# Spread over source addresses so the per-client bucket (burst 1,000) lets each
# request reach the cache.
SOURCES = [f"127.66.0.{i}" for i in range(1, 21)]


def test_a_host_the_edge_does_not_serve_is_misdirected(mesh: Mesh) -> None:
    event_id = edge_flows.new_event(mesh.http, mesh.admin_token())
    for host in ("evil.example", "Evil.Example:8080", "groundwork.local.evil", "127.0.0.2"):
        reply = httpx.get(f"{mesh.http}/v1/events/{event_id}", headers={"host": host})
        assert reply.status_code == 421, (host, reply.text)
        assert "age" not in reply.headers
    for host in ("localhost", "localhost:1234", "groundwork.local", mesh.plan.edge_http()):
        reply = httpx.get(f"{mesh.http}/v1/events/{event_id}", headers={"host": host})
        assert reply.status_code == 200, (host, reply.text)


def test_ten_thousand_invented_keys_leave_the_edge_within_its_bound(mesh: Mesh) -> None:
    admin = mesh.plan.edge_admin()
    event_id = edge_flows.new_event(mesh.http, mesh.admin_token())
    path = f"/v1/events/{event_id}"
    clients = [mesh.client_from(source) for source in SOURCES]
    # The same number of requests for one key first: what the connections, the
    # buffers and the per-client buckets need is then in place, and the next
    # 10,000 differ from these only in their keys.
    for i in range(KEYS):
        assert clients[i % len(clients)].get(path).status_code == 200
    before = envoy_stat(admin, "server.memory_allocated")

    def invented(i: int) -> tuple[str, dict[str, str]]:
        kind = i % 7
        if kind == 0:
            return path, {"host": f"h{i}.example"}  # not served: 421
        if kind == 1:
            return path, {"host": f"LocalHost:{i % 60000 + 1}"}  # served: one key for all
        if kind == 2:
            return f"{path}?x={i}", {}  # a query: uncached (and refused by transcoding)
        if kind == 3:
            return f"{path}/availability?since_version={i}-0", {}  # uncached
        if kind == 4:
            return "/v1/events/" + "".join(f"%{ord(c):02x}" for c in event_id), {}  # uncached
        if kind == 5:
            return f"/v1/events/{uuid.UUID(int=i)}", {}  # no such event: a 404, not stored
        return f"/v1/events/{event_id.upper()}", {}  # another spelling: a 400

    statuses: dict[int, int] = {}
    try:
        for i in range(KEYS):
            url, headers = invented(i)
            reply = clients[i % len(clients)].get(url, headers=headers)
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
    finally:
        for client in clients:
            client.close()
    assert 429 not in statuses, statuses
    grown = envoy_stat(admin, "server.memory_allocated") - before
    print(f"\n{KEYS} invented keys: edge heap {grown / 1024:+.0f} KiB; statuses {statuses}")
    assert grown < BOUND_BYTES, (grown, statuses)
