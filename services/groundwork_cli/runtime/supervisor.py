"""The process supervisor is supervisord (the `supervisor` package): it daemonizes,
restarts crashed processes, keeps per-process logs, signals whole process groups
and answers XML-RPC on a Unix socket. We only write its config and drive it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from groundwork_cli.runtime.layout import Layout
from groundwork_cli.runtime.plan import Plan, Process, service_database_url

# sun_path is 108 bytes on Linux (104 on macOS).
MAX_SOCKET_PATH = 100


def _quote_env(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _quote_arg(arg: str) -> str:
    # supervisord splits `command` with shlex; an empty argument needs quotes.
    if arg == "" or any(c in arg for c in " \"'\\"):
        return "'" + arg.replace("'", "'\"'\"'") + "'"
    return arg.replace("%", "%%")


def program_section(layout: Layout, process: Process, priority: int, env: dict[str, str]) -> str:
    lines = [
        f"[program:{process.name}]",
        "command=" + " ".join(_quote_arg(a) for a in process.command),
        "autostart=false",
        "autorestart=true",
        "startsecs=1",
        "startretries=3",
        f"stopsignal={process.stop_signal}",
        f"stopwaitsecs={process.stop_wait}",
        # Signal the whole process group: no orphaned children after `down`.
        "stopasgroup=true",
        "killasgroup=true",
        f"priority={priority}",
        "redirect_stderr=true",
        f"stdout_logfile={layout.output(process.name)}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
        f"directory={layout.root}",
    ]
    if process.user:
        lines.append(f"user={process.user}")
    if env:
        lines.append("environment=" + ",".join(f"{k}={_quote_env(v)}" for k, v in env.items()))
    return "\n".join(lines)


def render_config(plan: Plan) -> str:
    layout = plan.layout
    sections = [
        f"""[unix_http_server]
file={layout.supervisor_socket}
chmod=0700

[supervisord]
logfile={layout.log("supervisord")}
pidfile={layout.supervisor_pid}
childlogdir={layout.logs}
directory={layout.root}
identifier=groundwork
nodaemon=false
minfds=4096

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{layout.supervisor_socket}
"""
    ]
    for priority, process in enumerate(plan.processes(), start=1):
        # The runtime's server URL is not a service's: a service given it would
        # look for a database name (GROUNDWORK_DATABASE_NAME) it has no use for.
        env = {"GROUNDWORK_POSTGRES_URL": "", **process.env}
        if process.database:
            env["GROUNDWORK_DATABASE_URL"] = service_database_url(plan, process.database)
        sections.append(program_section(layout, process, priority * 10, env))
    return "\n\n".join(sections) + "\n"


def client(layout: Layout) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{layout.supervisor_socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def running(layout: Layout) -> bool:
    if not layout.supervisor_socket.exists():
        return False
    try:
        return bool(client(layout).getState()["statename"] == "RUNNING")
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return False


def start_daemon(layout: Layout, timeout: float = 15) -> None:
    if len(str(layout.supervisor_socket)) > MAX_SOCKET_PATH:
        raise RuntimeError(
            f"state directory path too long for a Unix socket: {layout.root} "
            "(set GROUNDWORK_STATE_DIR to a shorter path)"
        )
    layout.supervisor_socket.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(layout.supervisor_conf)],
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(layout):
            return
        time.sleep(0.1)
    raise RuntimeError(f"supervisord did not start; see {layout.log('supervisord')}")


def daemon_pid(layout: Layout) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(layout.supervisor_pid.read_text().strip())
    return None


@contextlib.contextmanager
def quiet_faults() -> Iterator[None]:
    with contextlib.suppress(xmlrpc.client.Fault):
        yield
