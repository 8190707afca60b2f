"""`groundwork policy bench`: what resilience costs, measured on the running mesh.

Side by side through the edge (REST reads of catalog), in alternating rounds so a
noisy machine drifts every variant alike: no policy; half of catalog's answers
failed by fault injection, without and with retries; and how long a policy takes
to reach the Envoys (apply, then the first request that shows it). Bounded by
`calls`; leaves catalog without a policy, as it must find it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from groundwork_cli.runtime import policies
from groundwork_cli.runtime.plan import Plan
from groundwork_envoy.policy import PolicyError

NAME = "bench-catalog"
PATH = "/v1/events?page_size=1"
HALF_FAIL = "  fault: {abort: {percent: 50, grpcStatus: 14}}\n"
VARIANTS = {
    "no policy": "",
    "50% failures, no retries": HALF_FAIL
    + "  retries: {conditions: [connect-failure], attempts: 1}\n",
    "50% failures, 5 retries": HALF_FAIL + "  retries: {conditions: [unavailable], attempts: 5}\n",
}


def _document(spec: str) -> str:
    return (
        "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
        f"metadata: {{name: {NAME}}}\nspec:\n  service: catalog\n{spec}"
    )


@dataclass
class Figures:
    ok: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self, baseline: float) -> list[str]:
        p50 = statistics.median(self.seconds) * 1000
        p99 = statistics.quantiles(self.seconds, n=100)[98] * 1000
        total = self.ok + self.failed
        return [
            f"{100 * self.ok / total:.1f}%",
            f"{p50:.1f}",
            f"{p99:.1f}",
            f"{statistics.median(self.seconds) / baseline:.2f}x",
        ]


def _set(plan: Plan, spec: str) -> None:
    if spec:
        policies.apply(plan, _document(spec))
    elif any(p.name == NAME for p in policies.stored(plan)):
        policies.delete(plan, NAME)


def _reload_seconds(plan: Plan, client: httpx.Client) -> tuple[float, float]:
    """Apply a 100% abort: (seconds to compile and write it, seconds from the files
    written to the first answer that shows it); then undo."""
    started = time.perf_counter()
    policies.apply(plan, _document("  fault: {abort: {percent: 100, httpStatus: 503}}\n"))
    written = time.perf_counter()
    while client.get(PATH).status_code != 503:
        if time.perf_counter() - written > 10:
            raise PolicyError("the policy did not reach the Envoys within 10 s")
    elapsed = written - started, time.perf_counter() - written
    policies.delete(plan, NAME)
    while client.get(PATH).status_code != 200:
        time.sleep(0.01)
    return elapsed


def run(plan: Plan, calls: int, rounds: int, say: Callable[[str], None]) -> None:
    if any(p.spec.service == "catalog" for p in policies.stored(plan)):
        raise PolicyError("catalog already has a TrafficPolicy: delete it before the bench")
    figures = {name: Figures() for name in VARIANTS}
    base = f"http://{plan.edge_http()}"
    with httpx.Client(base_url=base, timeout=30) as client:
        try:
            for _ in range(rounds):
                for name, spec in VARIANTS.items():
                    _set(plan, spec)
                    time.sleep(0.5)  # the reload takes milliseconds; leave no doubt
                    for _ in range(calls // rounds):
                        started = time.perf_counter()
                        ok = client.get(PATH).status_code == 200
                        figures[name].seconds.append(time.perf_counter() - started)
                        figures[name].ok += ok
                        figures[name].failed += not ok
            reloads = [_reload_seconds(plan, client) for _ in range(5)]
        finally:
            _set(plan, "")
    baseline = statistics.median(figures["no policy"].seconds)
    say(f"catalog reads through the edge, {calls} per variant in {rounds} alternating rounds")
    say(f"{'variant':<28} {'success':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 vs none':>12}")
    for name, figure in figures.items():
        success, p50, p99, ratio = figure.row(baseline)
        say(f"{name:<28} {success:>8} {p50:>8} {p99:>8} {ratio:>12}")
    compile_ms = statistics.median(r[0] for r in reloads) * 1000
    live_ms = statistics.median(r[1] for r in reloads) * 1000
    say(
        f"a policy: compiled and written in {compile_ms:.0f} ms, then live in {live_ms:.0f} ms"
        f" (medians of {len(reloads)}; no Envoy restarted)"
    )
