"""A real Kubernetes control plane on loopback, for installing the chart without a
container engine: etcd, kube-apiserver (RBAC and admission on, PodSecurity
included), kube-controller-manager and kube-scheduler from k8s.io/kubernetes, and
kwok simulating one node that moves pods through their lifecycle (containers never
run). Binaries are built from the Go module proxy by tests/infra/gobuild.py.

    python -m tests.infra.kube up STATE_DIR [--host 127.82.0.1]   # prints KUBECONFIG
    python -m tests.infra.kube down STATE_DIR
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from groundwork_cli.kube import kubectl_bin
from groundwork_cli.runtime.pki import Pki, ensure_ca, ensure_server_cert, issue_client_cert
from tests.infra.gobuild import binary

KUBE_VERSION = "v1.37.2"  # the kube-* binaries' version (tests/infra/go/kube/go.mod)
NODE = "kwok-node-0"
STAGES = Path(__file__).parent / "kwok-stages.yaml"
PORTS = {"etcd": 2379, "etcd-peer": 2380, "apiserver": 6443, "controller": 10257,
         "scheduler": 10259, "kwok": 10247}  # fmt: skip


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class ControlPlane:
    state: Path
    host: str = "127.82.0.1"
    # kwok's simulated node; False for a real one (tests/infra/node.py), which
    # also needs the API server on an address pods reach (not loopback).
    simulated: bool = True
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def pki(self) -> Pki:
        return Pki(self.state / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{PORTS['apiserver']}"

    # --- set-up ------------------------------------------------------------

    def _certificates(self) -> None:
        pki = self.pki
        ensure_ca(pki)
        ensure_server_cert(
            pki,
            "apiserver",
            ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost"],
            [self.host, "127.0.0.1", "10.96.0.1"],
        )
        for name, user, groups in (
            ("admin", "kubernetes-admin", ["system:masters"]),
            ("controller-manager", "system:kube-controller-manager", []),
            ("scheduler", "system:kube-scheduler", []),
            # kwok acts as the node's kubelet: it writes node and pod status.
            ("kwok", "kwok", ["system:masters"]),
            # The API server's client certificate for kubelets (exec, logs).
            ("apiserver-kubelet", "kube-apiserver-kubelet-client", ["system:masters"]),
        ):
            if not pki.cert(name).exists():
                issue_client_cert(pki, name, user, groups)
        sa_key = pki.directory / "service-account.key"
        if not sa_key.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            sa_key.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            (pki.directory / "service-account.pub").write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )

    def _kubeconfig(self, name: str) -> Path:
        path = self.state / f"{name}.kubeconfig"
        pki = self.pki
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "groundwork-sim",
                    "cluster": {"server": self.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate": str(pki.cert(name)),
                        "client-key": str(pki.key(name)),
                    },
                }
            ],
            "contexts": [
                {"name": "groundwork-sim", "context": {"cluster": "groundwork-sim", "user": name}}
            ],
            "current-context": "groundwork-sim",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.state / "logs" / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        (self.state / "pids" / name).write_text(str(self.processes[name].pid))

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ControlPlaneError(f"{name} exited: {self.tail(name)}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.state / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str) -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.cert("admin")), str(self.pki.key("admin")))
        try:
            with urllib.request.urlopen(self.server + path, context=context, timeout=3) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def up(self, timeout: float = 120) -> Path:
        for sub in ("logs", "pids", "etcd"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self._certificates()
        pki, h = self.pki, self.host
        etcd_url = f"http://{h}:{PORTS['etcd']}"
        self._start(
            "etcd",
            [
                str(binary("etcd")),
                "--data-dir", str(self.state / "etcd"),
                "--name", "sim",
                "--listen-client-urls", etcd_url,
                "--advertise-client-urls", etcd_url,
                "--listen-peer-urls", f"http://{h}:{PORTS['etcd-peer']}",
                "--initial-advertise-peer-urls", f"http://{h}:{PORTS['etcd-peer']}",
                "--initial-cluster", f"sim=http://{h}:{PORTS['etcd-peer']}",
                "--listen-metrics-urls", "",
                "--unsafe-no-fsync",  # a test cluster: speed over durability
                "--log-level", "warn",
            ],
        )  # fmt: skip
        self._start(
            "kube-apiserver",
            [
                str(binary("kube-apiserver")),
                "--etcd-servers", etcd_url,
                "--bind-address", h,
                "--advertise-address", h,
                "--secure-port", str(PORTS["apiserver"]),
                "--tls-cert-file", str(pki.cert("apiserver")),
                "--tls-private-key-file", str(pki.key("apiserver")),
                "--client-ca-file", str(pki.ca_cert),
                "--authorization-mode", "Node,RBAC",
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(pki.directory / "service-account.pub"),
                "--service-account-signing-key-file", str(pki.directory / "service-account.key"),
                "--service-cluster-ip-range", "10.96.0.0/16",
                "--cert-dir", str(self.state / "apiserver-certs"),
                "--profiling=false",
                # A kubelet by its address (no DNS here for node names).
                "--kubelet-preferred-address-types", "InternalIP",
                "--kubelet-client-certificate", str(pki.cert("apiserver-kubelet")),
                "--kubelet-client-key", str(pki.key("apiserver-kubelet")),
                # Loopback cannot be advertised as the kubernetes Service's endpoint;
                # a real node's pods reach the API server on the bridge's address.
                "--endpoint-reconciler-type", "none" if self.simulated else "lease",
                "--v", "1",
            ],
        )  # fmt: skip
        self._wait("kube-apiserver", lambda: self._get("/readyz")[0] == 200, timeout)
        for name, port in (("controller-manager", "controller"), ("scheduler", "scheduler")):
            config = str(self._kubeconfig(name))
            command = [
                str(binary(f"kube-{name}")),
                "--kubeconfig", config,
                "--authentication-kubeconfig", config,
                "--authorization-kubeconfig", config,
                "--bind-address", h,
                "--secure-port", str(PORTS[port]),
                "--leader-elect=false",
                "--v", "1",
            ]  # fmt: skip
            if name == "controller-manager":
                command += [
                    "--use-service-account-credentials",
                    "--service-account-private-key-file",
                    str(pki.directory / "service-account.key"),
                    "--root-ca-file",
                    str(pki.ca_cert),
                    "--cluster-signing-cert-file",
                    str(pki.ca_cert),
                    "--cluster-signing-key-file",
                    str(pki.ca_key),
                ]
            self._start(f"kube-{name}", command)
        admin = self._kubeconfig("admin")
        if not self.simulated:
            self._wait(
                "the default namespace",
                lambda: self._get("/api/v1/namespaces/default")[0] == 200,
                timeout,
            )
            return admin
        self._start(
            "kwok",
            [
                str(binary("kwok")),
                "--kubeconfig", str(self._kubeconfig("kwok")),
                "--config", str(STAGES),
                "--manage-all-nodes=true",
                "--server-address", f"{h}:{PORTS['kwok']}",
                "--node-ip", h,
                "--cidr", "10.244.0.0/16",
            ],
        )  # fmt: skip
        self._create_node()
        self._wait("node", self.node_ready, timeout)
        return admin

    def _create_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/hostname": NODE,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            },
        }
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(node))

    def node_ready(self, name: str = NODE) -> bool:
        status, body = self._get(f"/api/v1/nodes/{name}")
        if status != 200:
            return False
        conditions = yaml.safe_load(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return kubectl(self.kubeconfig, *args, input=input)

    # For a node beside the control plane (tests/infra/node.py): its processes are
    # started, watched, logged and stopped as the control plane's own are.
    def start_process(self, name: str, command: list[str]) -> None:
        self._start(name, command)

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        self._wait(what, check, timeout)

    def get(self, path: str) -> tuple[int, bytes]:
        return self._get(path)

    def kubeconfig_for(self, name: str) -> Path:
        return self._kubeconfig(name)

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        pid = process.pid if process else _read_pid(self.state / "pids" / name)
        if pid:
            _stop(pid)
        if process:
            process.wait(timeout=30)
        (self.state / "pids" / name).unlink(missing_ok=True)

    def down(self) -> None:
        names = ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
        for name in names:
            self.stop_process(name)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _stop(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> str:
    result = subprocess.run(
        [kubectl_bin(), "--kubeconfig", str(kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("state", type=Path)
    parser.add_argument("--host", default="127.82.0.1")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.state.resolve(), args.host)
    if args.action == "down":
        plane.down()
        return 0
    try:
        kubeconfig = plane.up()
    except ControlPlaneError as error:
        plane.down()
        print(f"control plane failed: {error}", file=sys.stderr)
        return 1
    print(kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
