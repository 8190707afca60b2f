"""A second mesh of its own (127.79.x.y): a taken port is named, and after
`down` no process of the mesh is left and no port is held."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil

from groundwork_cli.runtime import ports, supervisor
from tests.e2e.conftest import make_mesh


def test_taken_port_is_named_then_up_and_down_leave_nothing(tmp_path: Path) -> None:
    mesh = make_mesh(tmp_path / "state", 79)
    plan = mesh.plan
    edge_host, edge_port = plan.edge_http().split(":")
    with socket.socket() as squatter:
        squatter.bind((edge_host, int(edge_port)))
        squatter.listen()
        result = mesh.cli("up", check=False)
    assert result.returncode != 0
    assert f"{edge_host}:{edge_port} (edge) is already in use" in result.stderr
    assert not supervisor.running(plan.layout)

    mesh.cli("up")
    pids = [p["pid"] for p in supervisor.client(plan.layout).getAllProcessInfo()]
    pids.append(supervisor.daemon_pid(plan.layout))
    assert all(pids) and len(pids) == len(plan.processes()) + 1
    mesh.cli("down")
    alive = [
        pid
        for pid in pids
        if pid and psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    held = [(h, p) for proc in plan.processes() for h, p in proc.binds if ports.in_use(h, p)]
    assert held == []
    assert ports.check_free([(h, p, "x") for proc in plan.processes() for h, p in proc.binds]) == []
    assert (plan.layout.postgres / "PG_VERSION").exists()  # data kept without --purge
    mesh.cli("down", "--purge")
    assert not plan.layout.root.exists()
