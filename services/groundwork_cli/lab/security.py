"""Security costs: what a TLS handshake costs the edge (new sessions against resumed
ones, TLS 1.2 against 1.3, counted by one client against the edge's own
listener, each resumption checked), what argon2id costs per login
as its parameters grow (the identity service's hasher, timed in this process),
and what the edge's per-user rate limit does to an abusive client and a polite
one side by side (h2load as fast as it can with one user's token, and a client
at 2 requests a second with another's, from another address)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from argon2 import PasswordHasher

from groundwork_cli import h2load
from groundwork_cli.customers import mint
from groundwork_cli.lab import python_clients
from groundwork_cli.lab.outcome import Outcome, Table
from groundwork_cli.runtime.plan import Plan
from groundwork_identity import passwords

# (time_cost, memory KiB): around the service's own (t=2, 19 MiB, OWASP's minimum).
ARGON2 = [(1, 8 * 1024), (2, 19 * 1024), (3, 64 * 1024), (4, 128 * 1024)]


def argon2_ms(time_cost: int, memory_kib: int, repeats: int) -> float:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
    digest = hasher.hash("correct horse battery staple")
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        hasher.verify(digest, "correct horse battery staple")
        best = min(best, time.perf_counter() - started)
    return best * 1000


POLITE_ADDRESS = "127.0.0.2"


def rate_limits(plan: Plan, seconds: float) -> dict[str, dict[str, float]]:
    """Two users on GET /v1/me at once: one flooding, one at 2 requests a second."""
    abusive, polite = mint(plan, 2).tokens
    url = f"http://{plan.edge_http()}/v1/me"
    statuses: list[int] = []
    latencies: list[float] = []
    stop = threading.Event()

    def politely() -> None:
        # From an address of its own, as another customer's would be: the edge's
        # per-address bucket does not mix the two either.
        transport = httpx.HTTPTransport(local_address=POLITE_ADDRESS)
        headers = {"authorization": f"Bearer {polite}"}
        with httpx.Client(headers=headers, timeout=10, transport=transport) as client:
            while not stop.is_set():
                started = time.perf_counter()
                statuses.append(client.get(url).status_code)
                latencies.append((time.perf_counter() - started) * 1000)
                stop.wait(0.5)

    worker = threading.Thread(target=politely)
    worker.start()
    try:
        flood = h2load.run(
            h2load.Load(
                url,
                requests=int(2000 * seconds),
                connections=4,
                streams=8,
                headers=("accept-encoding: identity", f"authorization: Bearer {abusive}"),
            )
        )
    finally:
        stop.set()
        worker.join()
    polite_key = "polite (2 req/s, another user and address)"
    return {
        "abusive (h2load, one user)": {
            "requests": flood.requests,
            "ok": flood.succeeded,  # h2load's "succeeded" is 2xx only
            "refused": flood.non_2xx,
            "p50_ms": flood.p50_ms,
        },
        polite_key: {
            "requests": len(statuses),
            "ok": sum(1 for code in statuses if code == 200),
            "refused": sum(1 for code in statuses if code != 200),
            "p50_ms": sorted(latencies)[len(latencies) // 2] if latencies else 0.0,
        },
    }


def run(plan: Plan, quick: bool) -> Outcome:
    edge_https = plan.edge_https()
    seconds, repeats = (1, 3) if quick else (5, 10)
    tls: dict[str, float] = {}
    for version in ("tls1_2", "tls1_3"):
        for resume in (False, True):
            name = f"{version.replace('_', '.').upper()} {'resumed' if resume else 'full'}"
            tls[name] = python_clients.handshakes_per_second(edge_https, version, resume, seconds)
    argon: dict[str, float] = {
        f"t={t}, {m // 1024} MiB": argon2_ms(t, m, repeats) for t, m in ARGON2
    }
    limits = rate_limits(plan, seconds)
    table = Table(["what", "figure", "unit"])
    for name, rate in tls.items():
        table.rows.append([f"TLS handshake, {name}", rate, "handshakes/s (one client)"])
    for name, ms in argon.items():
        table.rows.append([f"argon2id verify, {name}", ms, "ms per login"])
    for name, r in limits.items():
        table.rows.append([f"rate limit, {name}", r["ok"], f"answered of {r['requests']:,}"])

    def plot(axes: Any) -> None:
        names = list(tls)
        axes.bar(names, [tls[n] for n in names], color=["#b42318", "#e3a008", "#2451c8", "#18794e"])
        axes.set_ylabel("TLS handshakes per second (one client, edge Envoy)")
        axes.tick_params(axis="x", labelsize=8)
        twin = axes.twinx()
        twin.plot(list(range(len(argon))), list(argon.values()), "ko--", label="argon2id ms")
        twin.set_ylabel("argon2id ms per verify (t, memory rising →)")

    full, resumed = tls["TLS1.3 full"], tls["TLS1.3 resumed"]
    polite = limits["polite (2 req/s, another user and address)"]
    current = argon[f"t={passwords.TIME_COST}, {passwords.MEMORY_KIB // 1024} MiB"]
    return Outcome(
        name="security",
        title="Security costs: TLS handshakes and password hashing",
        table=table,
        figures={
            "tls_handshakes_per_second": tls,
            "argon2id_verify_ms": argon,
            "rate_limits": limits,
        },
        explanation=(
            "A full TLS handshake is an asymmetric key exchange and a certificate signature "
            f"per connection: one client gets {full:,.0f} full TLS 1.3 handshakes a second from "
            f"the edge, and {resumed:,.0f} resumed ones (a session ticket skips the certificate "
            "and its signature, though TLS 1.3 still does a fresh key exchange, for forward "
            f"secrecy; TLS 1.2 resumption skips that too: {tls['TLS1.2 full']:,.0f} full "
            f"against {tls['TLS1.2 resumed']:,.0f} resumed a second), which is why connection "
            "reuse and resumption matter more than any cipher choice. argon2id is slow on "
            "purpose and memory-hard, so that a stolen "
            f"hash is expensive to guess: identity's parameters cost {current:.1f} ms of one "
            "core per login here, and the cost grows with both the passes and the memory — "
            "which is also why the edge rate-limits logins per client address. The per-user "
            "limit (the ratelimit service, shared by every edge) answers the flooding user "
            f"{limits['abusive (h2load, one user)']['ok']:,} times and refuses "
            f"{limits['abusive (h2load, one user)']['refused']:,} with 429, while the polite "
            f"user beside it got {polite['ok']} of {polite['requests']}: a limit per identity "
            "protects the others from one client, which a global limit would not."
        ),
        plot=plot,
    )
