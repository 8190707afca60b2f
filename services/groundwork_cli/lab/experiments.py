"""The lab's experiments, by name, each a function of the running mesh's plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from groundwork_cli.lab.outcome import Outcome
from groundwork_cli.runtime.plan import Plan


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    run: Callable[[Plan, bool], Outcome]  # (the mesh's plan, quick) -> outcome


def _formats(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import formats

    return formats.run(plan.edge_http(), quick)


def _indexes(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import indexes

    return indexes.run(plan.postgres_server_url(), quick)


def _isolation(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import isolation

    return isolation.run(plan.postgres_server_url(), quick)


def _security(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import security

    return security.run(plan, quick)


def _servers(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import servers

    return servers.run(quick)


def _protocols(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import protocols

    return protocols.run(plan.edge_http(), plan.edge_https(), quick)


def _proxies(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import proxies

    return proxies.run(plan, quick)


def _caching(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import caching

    return caching.run(plan.postgres_server_url(), plan.redis_url(), plan.edge_http(), quick)


def _delivery(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import delivery

    return delivery.run(plan.postgres_server_url(), plan.redis_url(), quick)


def _hol(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import hol

    return hol.run(quick)


def _balancing(plan: Plan, quick: bool) -> Outcome:
    from groundwork_cli.lab import balancing

    return balancing.run(quick)


EXPERIMENTS = {
    e.name: e
    for e in (
        Experiment("protocols", "HTTP/1.1, HTTP/2, HTTP/3 and gRPC for one read", _protocols),
        Experiment("hol", "Head-of-line blocking: HTTP/2 against HTTP/3 on a lossy link", _hol),
        Experiment("formats", "JSON against protobuf: bytes, encode/decode, compression", _formats),
        Experiment("proxies", "The cost of each proxy hop, with and without mTLS", _proxies),
        Experiment("balancing", "Four balancing policies with one slow replica", _balancing),
        Experiment("caching", "No cache, cache-aside, micro-cache; a stampede", _caching),
        Experiment("indexes", "The catalog's queries with and without their indexes", _indexes),
        Experiment("isolation", "Isolation levels and double booking", _isolation),
        Experiment(
            "delivery", "At most, at least and effectively once, crash after crash", _delivery
        ),
        Experiment("servers", "One event loop, processes on one port, a thread pool", _servers),
        Experiment("security", "TLS handshakes and argon2id: what security costs", _security),
    )
}
