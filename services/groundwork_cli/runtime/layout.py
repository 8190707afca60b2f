"""Where the local mesh keeps its state: data, certificates, configs, logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def envoy(self) -> Path:
        return self.root / "envoy"

    @property
    def policies(self) -> Path:
        """TrafficPolicies applied with `groundwork policy apply`."""
        return self.root / "policies"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def traces_db(self) -> Path:
        """Spans the built-in OTLP receiver keeps (`groundwork trace` reads them)."""
        return self.root / "traces.db"

    @property
    def jaeger_config(self) -> Path:
        return self.run / "jaeger.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres" / "data"

    @property
    def redis(self) -> Path:
        return self.root / "redis"

    @property
    def supervisor_conf(self) -> Path:
        return self.run / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.run / "supervisor.sock"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisord.pid"

    @property
    def pids(self) -> Path:
        return self.run / "pids.json"

    def log(self, name: str) -> Path:
        """What a process writes itself: a service's JSON lines, an Envoy's access log."""
        return self.logs / f"{name}.log"

    def output(self, name: str) -> Path:
        """A process's stdout and stderr, kept by supervisord: start-up messages,
        an Envoy's own warnings, a crash's traceback."""
        return self.logs / f"{name}.out"

    def logs_of(self, name: str) -> dict[str, Path]:
        return {name: self.log(name), f"{name} (out)": self.output(name)}

    def create(self) -> None:
        for path in (self.root, self.pki, self.envoy, self.logs, self.run):
            path.mkdir(parents=True, exist_ok=True)
