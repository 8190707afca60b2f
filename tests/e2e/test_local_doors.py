"""Local mode has no open doors: a process of another local user (nobody) finds
every door of a running mesh refused. Redis asks for a password, Postgres for a
SCRAM password (no trust, no peer over TCP), the Envoys' admin APIs and the
apps are Unix sockets in 0700 directories, and the secrets are 0600 files. The
Envoys' Prometheus metrics are public by decision, on a port that answers GET
/stats/prometheus and nothing else of the admin API."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Mesh

NOBODY = 65534
# Run by Debian's python3 as nobody (the project's venv lives where nobody may
# not look): standard library only, raw protocols.
PROBE = r"""
import http.client, json, socket, struct, sys
doors = json.loads(sys.argv[1])
found = {}

def tcp(host, port, data, size=64):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(data)
        return s.recv(size)

host, port = doors["redis"]
found["redis"] = tcp(host, port, b"PING\r\n").decode(errors="replace").strip()
found["redis_keys"] = tcp(host, port, b"KEYS waitingroom:*\r\n").decode(errors="replace").strip()
host, port = doors["postgres"]
body = b"user\x00postgres\x00database\x00postgres\x00\x00"
reply = tcp(host, port, struct.pack("!ii", 8 + len(body), 196608) + body)
found["postgres"] = [chr(reply[0]), struct.unpack("!i", reply[5:9])[0]]
for name, path in doors["sockets"].items():
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
        found[name] = "connected"
    except OSError as error:
        found[name] = type(error).__name__
for name, path in doors["files"].items():
    try:
        open(path).read()
        found[name] = "read"
    except OSError as error:
        found[name] = type(error).__name__
for name, (host, port) in doors["tcp"].items():
    try:
        socket.create_connection((host, port), timeout=2).close()
        found[name] = "connected"
    except OSError as error:
        found[name] = type(error).__name__
host, port = doors["metrics"]
for method, path in (("GET", "/stats/prometheus"), ("POST", "/healthcheck/fail"),
                     ("GET", "/clusters"), ("POST", "/quitquitquit"), ("GET", "/config_dump")):
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request(method, path)
    found[f"metrics {method} {path}"] = conn.getresponse().status
print(json.dumps(found))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="running a probe as another user needs root")
def test_another_local_user_finds_every_door_refused(mesh: Mesh) -> None:
    plan = mesh.plan
    assert plan.stores.redis and plan.stores.postgres, "the embedded stores"
    layout, secrets = plan.layout, plan.layout.secrets
    admins = plan.admin_addresses()
    doors: dict[str, object] = {
        "redis": [plan.stores.redis.host, plan.stores.redis.port],
        "postgres": [plan.stores.postgres.host, plan.stores.postgres.port],
        "sockets": {
            **{f"admin {name}": a.removeprefix("unix:") for name, a in admins.items()},
            "app booking-0": str(layout.run / "apps" / "booking-0.sock"),
        },
        "files": {
            "redis password": str(plan.stores.redis.password_file),
            "postgres password": str(plan.stores.postgres.password_file),
            **{f"secret {p.name}": str(p) for p in Path(secrets).iterdir()},
        },
        # Where the admin APIs listened before (loopback TCP): nothing now.
        "tcp": {
            "edge admin port": [plan.profile.edge_address(), plan.mesh.edge.admin],
            "sidecar admin port": [
                plan.profile.listen_address("booking", 0),
                plan.mesh.ports.admin,
            ],
        },
        "metrics": [plan.profile.edge_address(), plan.mesh.edge.metrics],
    }
    run = subprocess.run(
        ["/usr/bin/python3", "-c", PROBE, json.dumps(doors)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    print("\nas nobody:", json.dumps(found, indent=1))
    assert found["redis"].startswith("-NOAUTH"), found["redis"]
    assert found["redis_keys"].startswith("-NOAUTH"), found["redis_keys"]
    # 'R' with code 10: AuthenticationSASL (SCRAM-SHA-256); 0 would be trust.
    assert found["postgres"] == ["R", 10], found["postgres"]
    sockets, files, tcp = (doors[k] for k in ("sockets", "files", "tcp"))
    assert isinstance(sockets, dict) and isinstance(files, dict) and isinstance(tcp, dict)
    for name in [*sockets, *files]:
        assert found[name] == "PermissionError", (name, found[name])
    for name in tcp:
        assert found[name] == "ConnectionRefusedError", (name, found[name])
    assert found["metrics GET /stats/prometheus"] == 200
    for probe in ("POST /healthcheck/fail", "GET /clusters", "POST /quitquitquit"):
        assert found[f"metrics {probe}"] == 404, probe
    assert found["metrics GET /config_dump"] == 404
