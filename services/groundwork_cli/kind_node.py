"""A kind node image made on this machine, for `groundwork kube up kind --local`:
what `kindest/node` is, built from Debian's packages and the binaries the project
builds from the Go module proxy, because these machines pull no image.

The node is a Debian bookworm root (mmdebstrap) with systemd, Debian's containerd
and runc, iptables and the CNI plugins; kind's own entrypoint, units and scripts
(images/base/files of the pinned kind module); kubeadm, kubelet and kubectl; and an
archive of every image a new cluster runs (the control plane's, kube-proxy,
CoreDNS, the pause image, rancher's local-path-provisioner), imported into
containerd before the kubelet first starts. kubeadm is told the images' names
(kubeadmConfigPatches in `kind_config`), so it pulls nothing either.

Differences from kind's own image, each for a reason:
- pod networking is the CNI bridge plugin with a fixed 10.244.0.0/24 (kindnetd
  is not served by the Go module proxy): one node per cluster;
- containerd's unit asks for no unlimited rlimits and no negative oom_score_adj
  (this kernel refuses both), and containerd clamps pods' oom_score_adj;
- the kubelet accepts cgroup v1 (`failCgroupV1: false`), which these machines
  mount, and kube-proxy leaves the conntrack sysctls alone (not writable here)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundwork_cli import images
from groundwork_cli.images import CONTAINERS, REPOSITORY, ULIMITS, BuildError, Image

KUBERNETES = f"{REPOSITORY}/kubernetes"  # the cluster's own images, named as kubeadm asks
NODE_PACKAGES = [
    "systemd", "dbus", "conntrack", "iptables", "nftables", "iproute2", "ethtool",
    "util-linux", "mount", "kmod", "libseccomp2", "pigz", "socat", "bash",
    "ca-certificates", "curl", "jq", "procps", "containerd", "runc",
    "containernetworking-plugins",
]  # fmt: skip
# The components' base: a shell for the storage helper, iptables for kube-proxy.
COMPONENT_PACKAGES = ["iptables", "conntrack", "ca-certificates"]
COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "etcd",
    "coredns",
    "local-path-provisioner",
)
NODE_BINARIES = ("kubeadm", "kubelet", "kubectl")
BINARIES = (*COMPONENTS, *NODE_BINARIES)


def _version(binary: Path) -> str:
    """The version a binary reports (kube-*: `Kubernetes v1.37.2`; etcd:
    `etcd Version: 3.7.3`; coredns: `CoreDNS-1.15.0`)."""
    flag = "-version" if binary.name == "coredns" else "--version"
    output = subprocess.run([str(binary), flag], capture_output=True, text=True).stdout
    for word in output.replace("-", " ").split():
        if word.lstrip("v")[:1].isdigit() and "." in word:
            return word if word.startswith("v") else f"v{word}"
    raise BuildError(f"{binary} --version printed no version: {output[:200]!r}")


def _containerd_config(kind_files: Path, pause: str) -> str:
    """kind's containerd config, with the pause image built here and pods'
    oom_score_adj clamped to what this kernel allows."""
    text = (kind_files / "etc" / "containerd" / "config.toml").read_text()
    for old, new in (
        ('sandbox_image = "registry.k8s.io/pause:3.10"', f'sandbox_image = "{pause}"'),
        ("restrict_oom_score_adj = false", "restrict_oom_score_adj = true"),
    ):
        if old not in text:
            raise BuildError(f"kind's containerd config has no `{old}`: kind changed")
        text = text.replace(old, new)
    return text


CONTAINERD_DROP_IN = f"""\
# kind's unit, for this machine's kernel and Debian's containerd: rlimits may only
# be lowered here (kind asks for infinity) and a negative oom_score_adj is refused.
[Service]
ExecStart=
ExecStart=/usr/bin/containerd
LimitNOFILE={ULIMITS["nofile"]}
LimitNPROC={ULIMITS["nproc"]}
OOMScoreAdjust=0
"""


@dataclass(frozen=True)
class NodeImage:
    reference: str
    kubernetes_version: str
    tags: Mapping[str, str]  # component -> the tag its image has inside the node

    def kubeadm_patches(self) -> list[str]:
        """What kubeadm must be told on these machines and for these images."""
        import yaml

        cluster = {
            "kind": "ClusterConfiguration",
            "imageRepository": KUBERNETES,
            "etcd": {"local": {"imageRepository": KUBERNETES, "imageTag": self.tags["etcd"]}},
            "dns": {"imageRepository": KUBERNETES, "imageTag": self.tags["coredns"]},
        }
        kubelet = {"kind": "KubeletConfiguration", "failCgroupV1": False}
        proxy = {
            "kind": "KubeProxyConfiguration",
            "conntrack": {"tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        return [yaml.safe_dump(patch, sort_keys=False) for patch in (cluster, kubelet, proxy)]


def _component(program: str, binary: Path, base: str) -> tuple[str, str]:
    """The component's image, built (content tag), and the name kubeadm gives it."""
    image = Image(
        f"kubernetes-{program}",
        CONTAINERS / "kubernetes.Containerfile",
        (),
        sources=((binary, program),),
        build_args={"PROGRAM": program},
    )
    built = images.build(image, base)
    named = f"{KUBERNETES}/{program}:{_version(binary)}"
    images.tag(built.reference, named)  # the node's name for it, moved to this build
    return built.reference, named


def build(binaries: Mapping[str, Path], kind_files: Path, pause: str) -> NodeImage:
    """The node image for these binaries (see the module's text), built only when
    one of its inputs changed."""
    missing = [name for name in BINARIES if not binaries.get(name, Path("/-")).exists()]
    if missing:
        raise BuildError(f"the node image needs these binaries: {', '.join(missing)}")
    images.ensure_tools()
    component_base = images.debian_image(f"{REPOSITORY}/kubernetes-base", COMPONENT_PACKAGES)
    names: dict[str, str] = {}
    built = []
    for program in COMPONENTS:
        reference, names[program] = _component(program, binaries[program], component_base)
        built.append(reference)
    helper = f"{KUBERNETES}/local-path-helper:{component_base.rpartition(':')[2]}"
    images.tag(component_base, helper)
    storage = (CONTAINERS / "kind-default-storage.yaml").read_text()
    storage = storage.replace("PROVISIONER_IMAGE", names["local-path-provisioner"])
    storage = storage.replace("HELPER_IMAGE", helper)
    version = _version(binaries["kubelet"])
    node = Image(
        "kind-node",
        CONTAINERS / "kind-node.Containerfile",
        (),
        sources=(
            (kind_files, "kind-base"),
            (CONTAINERS / "kind-node", "kind-node"),
            *((binaries[name], name) for name in NODE_BINARIES),
        ),
        written=(
            ("kind-node/etc/containerd/config.toml", _containerd_config(kind_files, pause)),
            (
                "kind-node/etc/systemd/system/containerd.service.d/20-groundwork.conf",
                CONTAINERD_DROP_IN,
            ),
            ("kind-node/kind/manifests/default-storage.yaml", storage),
            ("kind-node/kind/version", version),
            # What the names below are now (content tags): part of the node's tag.
            ("kind-node/kind/images.txt", "\n".join([*built, component_base, pause])),
        ),
        archive=(*names.values(), helper, pause),
    )
    root = images.debian_image(f"{REPOSITORY}/kind-node-root", NODE_PACKAGES)
    reference = images.build(node, root).reference
    tags = {program: name.rpartition(":")[2] for program, name in names.items()}
    return NodeImage(reference, version, tags)


def kind_config(node: NodeImage, port_mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """A one-node cluster of this node image (CNI baked in: kind's is not used)."""
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"disableDefaultCNI": True},
        "nodes": [
            {"role": "control-plane", "image": node.reference, "extraPortMappings": port_mappings}
        ],
        "kubeadmConfigPatches": node.kubeadm_patches(),
    }
