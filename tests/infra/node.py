"""A real Kubernetes node on this machine, beside the control plane of
tests/infra/kube.py: Debian's containerd and runc, the CNI bridge plugin, and
kubelet and kube-proxy built from the Go module proxy (tests/infra/gobuild.py).
Pods run as real containers on a bridge the node makes (10.244.0.0/24); the API
server listens on the bridge's own address, so pods reach it as the node does,
and nothing listens beyond this machine's loopback and that bridge.

The fixes each piece needs on these machines are recorded in
shared/recipes/real-node (rlimits only lowered, cgroup v1, no negative
oom_score_adj)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from groundwork_cli import packages
from groundwork_cli.runtime.pki import ensure_server_cert, issue_client_cert
from tests.infra.gobuild import binary
from tests.infra.kube import ControlPlane, ControlPlaneError

BRIDGE = "gw-k8s0"
GATEWAY = "10.244.0.1"  # the bridge's address: the API server's and the node's
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"  # the API server's --service-cluster-ip-range
NODE_NAME = "groundwork-node"
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins


def _sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise ControlPlaneError(f"{' '.join(command)}: {result.stderr.strip()[-1500:]}")
    return result


def make_bridge() -> None:
    """The pods' bridge, with the gateway address, before anything binds to it."""
    if _sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _sh("ip", "link", "add", BRIDGE, "type", "bridge")
    if GATEWAY not in _sh("ip", "-4", "addr", "show", BRIDGE).stdout:
        _sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    _sh("ip", "link", "set", BRIDGE, "up")


@dataclass
class Node:
    cluster: ControlPlane
    pause_image: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def state(self) -> Path:
        return self.cluster.state / "node"

    @property
    def socket(self) -> Path:
        # Short: a Unix socket path has at most 107 bytes.
        return Path("/run/groundwork-node") / "containerd.sock"

    def _containerd_config(self) -> Path:
        root = self.state / "containerd"
        config = f"""version = 2
root = "{root / "root"}"
state = "{self.socket.parent / "state"}"
[grpc]
  address = "{self.socket}"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{self.pause_image}"
    # A negative oom_score_adj is refused here: keep within what the kernel allows.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN}"
      conf_dir = "{self.state / "cni"}"
"""
        path = self.state / "containerd.toml"
        path.write_text(config)
        network = {
            "cniVersion": "0.4.0",
            "name": "groundwork-pods",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,  # pods talk to this machine only
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                        # Services only (kube-proxy on the node turns them into
                        # pods): no default route, pods reach nothing else.
                        "routes": [{"dst": SERVICE_CIDR}],
                        "dataDir": str(self.state / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        }
        (self.state / "cni").mkdir(parents=True, exist_ok=True)
        (self.state / "cni" / "10-groundwork.conflist").write_text(json.dumps(network, indent=2))
        return path

    def _kubelet_config(self) -> Path:
        pki = self.cluster.pki
        ensure_server_cert(pki, "kubelet", [NODE_NAME, "localhost"], [GATEWAY, "127.0.0.1"])
        if not pki.cert("node").exists():
            issue_client_cert(pki, "node", f"system:node:{NODE_NAME}", ["system:nodes"])
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "address": GATEWAY,
            "healthzBindAddress": "127.0.0.1",
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "tlsCertFile": str(pki.cert("kubelet")),
            "tlsPrivateKeyFile": str(pki.key("kubelet")),
            "failSwapOn": False,
            "failCgroupV1": False,  # this machine mounts cgroup v1
            "protectKernelDefaults": False,
            "makeIPTablesUtilChains": False,
            "clusterDomain": "cluster.local",
            "clusterDNS": [GATEWAY],
            "resolvConf": "/etc/resolv.conf",
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "podCIDR": POD_CIDR,
            "staticPodPath": str(self.state / "manifests"),
            "rootDir": str(self.state / "kubelet"),
        }
        (self.state / "manifests").mkdir(parents=True, exist_ok=True)
        path = self.state / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _proxy_config(self) -> Path:
        pki = self.cluster.pki
        if not pki.cert("kube-proxy").exists():
            issue_client_cert(pki, "kube-proxy", "system:kube-proxy", [])
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "clientConnection": {"kubeconfig": str(self.cluster.kubeconfig_for("kube-proxy"))},
            "bindAddress": "127.0.0.1",
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # conntrack sysctls may be unwritable here: leave them as they are.
            "conntrack": {
                "maxPerCore": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            # NodePorts on 127.0.0.1 too: the tests reach the edge there.
            "nodePortAddresses": ["127.0.0.0/8", f"{GATEWAY}/32"],
        }
        path = self.state / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def up(self, timeout: float = 180) -> None:
        # Debian's, installed on a machine that lacks them (the CNI plugins come
        # with podman too; conntrack is what kube-proxy clears stale flows with).
        for program in ("containerd", "runc", "iptables", "conntrack"):
            packages.ensure(program, program)  # each package is named as its program
        packages.ensure_package("containernetworking-plugins")
        self.state.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.cluster.start_process(
            "containerd", ["containerd", "--config", str(self._containerd_config())]
        )
        self.cluster.wait_for("containerd", lambda: self.ctr("version").returncode == 0, 60)
        self.cluster.start_process(
            "kubelet",
            [
                str(binary("kubelet")),
                "--config", str(self._kubelet_config()),
                "--kubeconfig", str(self.cluster.kubeconfig_for("node")),
                "--hostname-override", NODE_NAME,
                "--node-ip", GATEWAY,
                "--v", "1",
            ],
        )  # fmt: skip
        self.cluster.start_process(
            "kube-proxy", [str(binary("kube-proxy")), "--config", str(self._proxy_config())]
        )
        self.cluster.start_process(
            "coredns", [str(binary("coredns")), "-conf", str(self._corefile()), "-dns.port", "53"]
        )
        self.cluster.wait_for("node", lambda: self.cluster.node_ready(NODE_NAME), timeout)

    def _corefile(self) -> Path:
        """Cluster DNS on the bridge's address (the kubelet's clusterDNS), from the
        API server; names outside the cluster are not resolved (nothing leaves)."""
        pki = self.cluster.pki
        if not pki.cert("coredns").exists():
            issue_client_cert(pki, "coredns", "system:coredns", ["system:masters"])
        kubeconfig = self.cluster.kubeconfig_for("coredns")
        path = self.state / "Corefile"
        path.write_text(
            f"""cluster.local:53 in-addr.arpa:53 {{
    bind {GATEWAY}
    errors
    kubernetes cluster.local in-addr.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa
    }}
    cache 5
}}
.:53 {{
    bind {GATEWAY}
    errors
}}
"""
        )
        return path

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return _sh(
            "ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args, check=False
        )

    def load(self, archive: Path) -> None:
        """Images into the node's containerd (pods then run them, never pulled)."""
        result = self.ctr("images", "import", "--all-platforms", str(archive))
        if result.returncode != 0:
            raise ControlPlaneError(f"ctr images import: {result.stderr.strip()[-1500:]}")

    def down(self) -> None:
        """Every pod's processes, then the node's, its iptables rules and bridge."""
        for name in ("coredns", "kube-proxy", "kubelet", "containerd"):
            self.cluster.stop_process(name)
        # Each container's shim (and the container under it) outlives containerd.
        for process in psutil.process_iter(["cmdline"]):
            if str(self.socket) in " ".join(process.info["cmdline"] or []):
                for child in [*process.children(recursive=True), process]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
        _sh(str(binary("kube-proxy")), "--cleanup", check=False)
        # Pod network namespaces the sandboxes left (their veths go with them).
        for netns in _sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = netns.split()[0] if netns.strip() else ""
            if name.startswith("cni-"):
                _sh("ip", "netns", "delete", name, check=False)
        _sh("ip", "link", "delete", BRIDGE, check=False)
        # What the killed sandboxes kept mounted (shm, root file systems, volumes).
        for mount in sorted(self.mounts(), reverse=True):
            _sh("umount", "--lazy", mount, check=False)
        shutil.rmtree(self.socket.parent, ignore_errors=True)

    def mounts(self) -> list[str]:
        """Mount points under the node's directories."""
        roots = (str(self.socket.parent) + "/", str(self.state) + "/")
        with open("/proc/self/mounts") as table:
            points = [line.split()[1] for line in table]
        return [p for p in points if p.startswith(roots)]
