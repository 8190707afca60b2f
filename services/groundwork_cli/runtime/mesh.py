"""`up`, `down` and `status` of the local mesh."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import yaml

from groundwork_cli.runtime import databases, jaeger, policies, ports, probes, supervisor
from groundwork_cli.runtime.pki import Pki, ensure_ca, ensure_mesh_certs, ensure_server_cert
from groundwork_cli.runtime.plan import Plan, Process

Say = Callable[[str], None]


class MeshError(Exception):
    pass


def _tail(plan: Plan, name: str, lines: int = 15) -> str:
    """The last lines of what a process wrote itself and of its output."""
    parts = []
    for path in plan.layout.logs_of(name).values():
        if path.exists():
            text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            parts.append(f"--- last lines of {path} ---\n{text}")
    return "\n".join(parts) or "(no log)"


def prepare(plan: Plan) -> None:
    """Files the processes need: certificates, Envoy configs, an initialized database."""
    layout = plan.layout
    layout.create()
    pki = Pki(layout.pki)
    ensure_ca(pki)
    ensure_server_cert(
        pki, "edge", ["localhost"], sorted({plan.profile.edge_address(), "127.0.0.1"})
    )
    identities = ["edge", *plan.mesh.services]
    ensure_mesh_certs(pki, {name: plan.profile.spiffe_id(name) for name in identities})
    policies.deliver(plan)  # with the TrafficPolicies applied before, if any
    # Apps listen on Unix sockets here, and so do their sidecars' outbound
    # listeners, and the Envoys' admin APIs (0600): only this user may enter.
    for private in (layout.run / "apps", layout.run / "admin"):
        private.mkdir(mode=0o700, exist_ok=True)
        private.chmod(0o700)
    sockets = [*plan.admin_addresses().values()]
    for process in plan.services:
        sockets += [process.listen, process.env.get("GROUNDWORK_MESH_OUTBOUND", "")]
    for target in sockets:
        if target.startswith("unix:") and len(target) - 5 > supervisor.MAX_SOCKET_PATH:
            raise MeshError(
                f"socket path too long: {target[5:]} (set a shorter GROUNDWORK_STATE_DIR)"
            )
    if plan.jaeger:
        settings = jaeger.config(plan.jaeger.host, forward=plan.jaeger.forward)
        layout.jaeger_config.write_text(yaml.safe_dump(settings, sort_keys=False))
    if plan.stores.postgres:
        plan.stores.postgres.init()
    layout.supervisor_conf.write_text(supervisor.render_config(plan))


async def migrate_and_seed(plan: Plan, say: Say, seed: bool = True, reset: bool = False) -> None:
    """What Helm hook Jobs do on Kubernetes: databases, migrations, sample data."""
    await databases.migrate_and_seed(
        plan.postgres_server_url(), plan.mesh, plan.secrets, say, seed=seed, reset=reset
    )


async def _start(plan: Plan, process: Process, timeout: float, say: Say) -> None:
    rpc = supervisor.client(plan.layout)
    started = time.monotonic()
    try:
        await asyncio.to_thread(rpc.startProcess, process.name, True)
        await probes.wait_until(process.gate, timeout, process.name)
    except Exception as error:  # any failure to start is reported with the log tail
        raise MeshError(
            f"{process.name} failed to become healthy: {error}\n{_tail(plan, process.name)}"
        ) from error
    say(f"  {process.name:<20} healthy in {time.monotonic() - started:4.1f}s")


async def _start_group(plan: Plan, group: list[Process], timeout: float, say: Say) -> None:
    await asyncio.gather(*(_start(plan, p, timeout, say) for p in group))


def _record_pids(plan: Plan) -> None:
    """Remember (pid, start time) of every process so `down` can prove none survived."""
    info = supervisor.client(plan.layout).getAllProcessInfo()
    pids = {p["name"]: p["pid"] for p in info if p["pid"]}
    pids["supervisord"] = supervisor.daemon_pid(plan.layout) or 0
    record = {}
    for name, pid in pids.items():
        try:
            record[name] = [pid, psutil.Process(pid).create_time()]
        except psutil.Error:
            continue
    plan.layout.pids.write_text(json.dumps(record))


def up(plan: Plan, timeout: float, say: Say, cleanup: bool = True) -> bool:
    """Start everything in dependency order, each step gated on health.
    Returns False (and changes nothing) when this mesh is already up."""
    if supervisor.running(plan.layout):
        return False
    binds = [(h, p, proc.name) for proc in plan.processes() for h, p in proc.binds]
    problems = ports.check_free(binds)
    if problems:
        raise MeshError("cannot start the mesh:\n  " + "\n  ".join(problems))
    prepare(plan)
    supervisor.start_daemon(plan.layout)
    try:
        asyncio.run(_up(plan, timeout, say))
    except BaseException:
        if cleanup:
            down(plan, say=lambda _: None)
        raise
    _record_pids(plan)
    return True


async def _up(plan: Plan, timeout: float, say: Say) -> None:
    say("starting data stores")
    await _start_group(plan, plan.infra, timeout, say)
    await probes.wait_until(probes.postgres(plan.postgres_server_url()), timeout, "postgres")
    await probes.wait_until(probes.redis(plan.redis_url()), timeout, "redis")
    say("migrating and seeding")
    await migrate_and_seed(plan, say)
    say("starting services")
    await _start_group(plan, plan.services, timeout, say)
    say("starting sidecars")
    await _start_group(plan, plan.sidecars, timeout, say)
    say("starting edge")
    await _start_group(plan, [plan.edge], timeout, say)


def down(plan: Plan, say: Say, purge: bool = False) -> list[str]:
    """Stop every process, newest first, then the supervisor. Returns leftovers
    that had to be killed (should be none)."""
    layout = plan.layout
    if supervisor.running(layout):
        rpc = supervisor.client(layout)
        pid = supervisor.daemon_pid(layout)  # read now: supervisord removes it on shutdown
        for process in reversed(plan.processes()):
            with supervisor.quiet_faults():  # not running: nothing to stop
                rpc.stopProcess(process.name, True)
                say(f"  stopped {process.name}")
        with supervisor.quiet_faults():
            rpc.shutdown()
        if pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(timeout=30)
    leftovers = _kill_leftovers(plan)
    layout.supervisor_socket.unlink(missing_ok=True)
    if purge and layout.root.exists():
        shutil.rmtree(layout.root)
        say(f"  removed {layout.root}")
    return leftovers


def _kill_leftovers(plan: Plan) -> list[str]:
    if not plan.layout.pids.exists():
        return []
    killed = []
    for name, (pid, created) in json.loads(plan.layout.pids.read_text()).items():
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - created) < 0.01:  # the same process, not a reused pid
                proc.kill()
                killed.append(f"{name} (pid {pid})")
        except psutil.Error:
            continue
    plan.layout.pids.unlink(missing_ok=True)
    return killed


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: str
    pid: int
    uptime: str


def process_status(plan: Plan) -> list[ProcessStatus]:
    info = {p["name"]: p for p in supervisor.client(plan.layout).getAllProcessInfo()}
    result = []
    for process in plan.processes():
        p = info.get(process.name, {})
        uptime = ""
        if p.get("statename") == "RUNNING":
            uptime = str(p.get("description", "")).replace("pid ", "").split("uptime ")[-1]
        result.append(
            ProcessStatus(process.name, p.get("statename", "UNKNOWN"), p.get("pid", 0), uptime)
        )
    return result


async def cluster_status(plan: Plan) -> dict[str, list[probes.ClusterHealth] | str]:
    async def one(admin: str) -> list[probes.ClusterHealth] | str:
        try:
            return await probes.envoy_clusters(admin)
        except Exception as error:
            return f"admin unreachable: {error!r}"

    names = plan.admin_addresses()
    results = await asyncio.gather(*(one(a) for a in names.values()))
    return dict(zip(names, results, strict=True))
