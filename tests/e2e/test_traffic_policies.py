"""TrafficPolicies on the running local mesh, through the edge: the Envoys reload
their dynamic config files live; none restarts."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from groundwork_cli.runtime import envoy_admin, policies, supervisor
from tests.e2e.conftest import Mesh, envoy_stat

EVENTS = "/v1/events?page_size=1"


def document(name: str, spec: str) -> str:
    return (
        "apiVersion: groundwork.dev/v1alpha1\nkind: TrafficPolicy\n"
        f"metadata: {{name: {name}}}\nspec:\n  service: catalog\n{spec}"
    )


def groundwork(mesh: Mesh, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "groundwork_cli", "policy", *args],
        input=stdin,
        env=mesh.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _pid(mesh: Mesh, name: str) -> int:
    """The process supervisord runs under this name (a restart would change it)."""
    return int(supervisor.client(mesh.plan.layout).getProcessInfo(name)["pid"])


def statuses(client: httpx.Client, count: int) -> Counter[int]:
    return Counter(client.get(EVENTS).status_code for _ in range(count))


def until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the mesh did not take the policy in time")
        time.sleep(0.1)


def _reload_counter(file_name: str) -> str:
    """The admin stats filter of the counter a reload of this dynamic file bumps."""
    if file_name == "cds.yaml":
        return r"^cluster_manager\.cds\.update_success$"
    if file_name == "lds.yaml":
        return r"^listener_manager\.lds\.update_success$"
    route = re.escape(file_name.removeprefix("rds-").removesuffix(".yaml"))
    return rf"\.rds\.{route}\.update_success$"


def _reloads(admin: str, file_name: str) -> int:
    reply = envoy_admin.get(admin, "/stats", filter=_reload_counter(file_name))
    return sum(int(line.rsplit(":", 1)[1]) for line in reply.text.splitlines() if line.strip())


def apply_live(mesh: Mesh, text: str) -> None:
    """Apply a policy and return once every Envoy whose files it changed has
    reloaded each of them (Envoy's own update counters, not the clock)."""
    admins = mesh.plan.admin_addresses()
    files = {p: p.read_text() for p in mesh.plan.layout.envoy.glob("*/*.yaml")}
    before = {p: _reloads(admins[p.parent.name], p.name) for p in files}
    policies.apply(mesh.plan, text)
    changed = [p for p, old in files.items() if p.read_text() != old]
    assert changed, "the policy changed no Envoy's files"
    until(lambda: all(_reloads(admins[p.parent.name], p.name) > before[p] for p in changed))


@pytest.fixture
def client(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.http, timeout=10) as c:
        yield c


@pytest.fixture
def clean(mesh: Mesh) -> Iterator[None]:
    """No policy outlives its test; the mesh serves catalog again before the next."""
    yield
    for policy in policies.stored(mesh.plan):
        policies.delete(mesh.plan, policy.name)
    with httpx.Client(base_url=mesh.http, timeout=10) as c:
        until(lambda: c.get(EVENTS).status_code == 200, timeout=30)


def test_abort_fails_every_call_and_delete_restores_it_live(
    mesh: Mesh, client: httpx.Client, clean: None, tmp_path: Path
) -> None:
    admins = mesh.plan.admin_addresses()
    sidecar = admins["sidecar-catalog-0"]
    envoys = ("edge", "sidecar-catalog-0", "sidecar-catalog-1", "sidecar-booking-0")
    pids = {name: _pid(mesh, name) for name in envoys}
    reloads = envoy_stat(sidecar, "http.inbound.rds.inbound.update_success")
    assert client.get(EVENTS).status_code == 200

    path = tmp_path / "abort.yaml"
    path.write_text(document("catalog-down", "  fault: {abort: {percent: 100, httpStatus: 503}}\n"))
    applied = groundwork(mesh, "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    assert "sidecar-catalog-0, sidecar-catalog-1" in applied.stdout
    until(lambda: client.get(EVENTS).status_code == 503)
    reply = client.get(EVENTS)
    assert reply.status_code == 503 and "fault filter abort" in reply.text
    assert statuses(client, 20) == {503: 20}
    assert "catalog-down" in groundwork(mesh, "list").stdout

    deleted = groundwork(mesh, "delete", "catalog-down")
    assert deleted.returncode == 0, deleted.stderr
    until(lambda: client.get(EVENTS).status_code == 200)
    assert statuses(client, 20) == {200: 20}

    # Delivered by reloading routes, not by restarting Envoy.
    assert envoy_stat(sidecar, "http.inbound.rds.inbound.update_success") >= reloads + 2
    assert {name: _pid(mesh, name) for name in envoys} == pids  # the same processes


def test_retries_hide_an_injected_50_percent_failure_rate(
    mesh: Mesh, client: httpx.Client, clean: None
) -> None:
    half = "  fault: {abort: {percent: 50, grpcStatus: 14}}\n"
    # Without retries on UNAVAILABLE the caller sees the failures: the check can fail.
    policies.apply(
        mesh.plan,
        document("flaky", half + "  retries: {conditions: [connect-failure], attempts: 1}\n"),
    )
    until(lambda: statuses(client, 10)[503] > 0)
    failed = statuses(client, 200)[503]
    assert 50 <= failed <= 150, failed

    admins = mesh.plan.admin_addresses()
    injected = sum(
        envoy_stat(admins[f"sidecar-catalog-{i}"], "http.inbound.fault.aborts_injected")
        for i in (0, 1)
    )
    retried = "  retries: {conditions: [unavailable], attempts: 10}\n"
    apply_live(mesh, document("flaky", half + retried))
    # Eleven tries each: a call still fails with probability 0.5^11 (1 in 2,048), so
    # 300 calls expect 0.15 failures; more than two would be a 1-in-2,000 event.
    seen = statuses(client, 300)
    assert seen[200] >= 298, seen
    after = sum(
        envoy_stat(admins[f"sidecar-catalog-{i}"], "http.inbound.fault.aborts_injected")
        for i in (0, 1)
    )
    assert after - injected >= 150  # the failures happened; the retries hid them


def test_a_90_10_split_sends_about_a_tenth_to_the_canary(
    mesh: Mesh, client: httpx.Client, clean: None
) -> None:
    calls = 1000
    apply_live(mesh, document("canary", "  split: {stable: 90, canary: 10}\n"))
    versions: Counter[str] = Counter()
    for _ in range(calls):
        reply = client.get(EVENTS)
        assert reply.status_code == 200
        versions[reply.headers["x-groundwork-version"]] += 1
    share = versions["canary"] / calls
    # Binomial: sd = sqrt(0.1 * 0.9 / 1000) ~ 0.0095; +-0.03 is over three sd.
    assert 0.07 <= share <= 0.13, versions


def test_a_bad_policy_is_refused_and_changes_nothing(mesh: Mesh, clean: None) -> None:
    files = sorted(mesh.plan.layout.envoy.glob("**/*.yaml"))
    before = {p: p.read_text() for p in files}
    refused = groundwork(
        mesh,
        "apply",
        "-",
        stdin=document("bad", "  split: {stable: 90, canary: 5}\n"),
    )
    assert refused.returncode != 0
    assert "split.stable + split.canary must be 100 (got 95)" in refused.stderr
    conflict = groundwork(
        mesh, "apply", "-", stdin=document("bad", "  split: {stable: 90, canary: 10}\n")
    )
    assert conflict.returncode == 0
    second = groundwork(mesh, "apply", "-", stdin=document("worse", "  timeout: 1s\n"))
    assert second.returncode != 0
    assert "catalog already has TrafficPolicy bad" in second.stderr
    assert [p.name for p in policies.stored(mesh.plan)] == ["bad"]
    missing = groundwork(mesh, "delete", "nothing")
    assert missing.returncode != 0 and "no TrafficPolicy named 'nothing'" in missing.stderr
    groundwork(mesh, "delete", "bad")
    assert {p: p.read_text() for p in files} == before


def test_the_bench_prints_its_figures_and_leaves_no_policy(mesh: Mesh, clean: None) -> None:
    from groundwork_cli.policy_bench import VARIANTS, run

    lines: list[str] = []
    run(mesh.plan, calls=40, rounds=2, say=lines.append)
    rows = {line[:28].strip(): line.split() for line in lines[2:5]}
    assert set(rows) == set(VARIANTS)
    assert rows["no policy"][2] == "100.0%"
    assert "no Envoy restarted" in lines[-1]
    assert policies.stored(mesh.plan) == []
