"""Pre-flight: every address the mesh binds must be free before anything starts."""

from __future__ import annotations

import errno
import socket

import psutil


def holder(host: str, port: int) -> str:
    """Best effort: which process listens there (needs privileges on some systems)."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            local_ip, local_port = getattr(conn.laddr, "ip", None), getattr(conn.laddr, "port", 0)
            listening = local_port == port and local_ip in (host, "0.0.0.0", "::")
            if listening and conn.pid:
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


def check_free(binds: list[tuple[str, int, str]]) -> list[str]:
    """Problems, one line each, for (host, port, owner) that cannot be bound now."""
    problems = []
    for host, port, owner in binds:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    problems.append(
                        f"{host}:{port} ({owner}) is already in use{holder(host, port)}"
                    )
                elif error.errno == errno.EADDRNOTAVAIL:
                    problems.append(
                        f"{host}:{port} ({owner}): address not available; on macOS add it with "
                        f"`sudo ifconfig lo0 alias {host} up`"
                    )
                else:
                    problems.append(f"{host}:{port} ({owner}): {error.strerror}")
    return problems


def in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
