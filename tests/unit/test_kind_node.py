"""The kind node image's logic: what kubeadm and containerd are told, versions read
from the binaries, and chart values merged as Helm merges them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from groundwork_cli import kind_node, kube
from groundwork_cli.images import BuildError

KIND_CONTAINERD = """\
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = false
"""


def _kind_files(tmp_path: Path, config: str) -> Path:
    (tmp_path / "etc" / "containerd").mkdir(parents=True)
    (tmp_path / "etc" / "containerd" / "config.toml").write_text(config)
    return tmp_path


def test_containerd_runs_the_pause_image_built_here_and_clamps_oom_scores(tmp_path: Path) -> None:
    config = kind_node._containerd_config(_kind_files(tmp_path, KIND_CONTAINERD), "local/pause:1")
    assert 'sandbox_image = "local/pause:1"' in config
    assert "restrict_oom_score_adj = true" in config
    assert "registry.k8s.io" not in config


def test_a_kind_whose_containerd_config_changed_is_refused_by_name(tmp_path: Path) -> None:
    changed = KIND_CONTAINERD.replace("restrict_oom_score_adj = false\n", "")
    with pytest.raises(BuildError, match="restrict_oom_score_adj = false"):
        kind_node._containerd_config(_kind_files(tmp_path, changed), "local/pause:1")


def _reporting(tmp_path: Path, name: str, output: str) -> Path:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("name", "output", "version"),
    [
        ("kubelet", "Kubernetes v1.37.2", "v1.37.2"),
        ("etcd", "etcd Version: 3.7.3", "v3.7.3"),
        ("coredns", "CoreDNS-1.15.0", "v1.15.0"),
        ("local-path-provisioner", "local-path-provisioner version v0.0.30", "v0.0.30"),
    ],
)
def test_an_image_is_tagged_with_the_version_its_binary_reports(
    tmp_path: Path, name: str, output: str, version: str
) -> None:
    assert kind_node._version(_reporting(tmp_path, name, output)) == version


def test_a_binary_without_a_version_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no version"):
        kind_node._version(_reporting(tmp_path, "kubelet", "usage: kubelet"))


def test_missing_binaries_are_named_before_anything_is_built(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="kubeadm, kubelet, kubectl"):
        kind_node.build({n: tmp_path for n in kind_node.COMPONENTS}, tmp_path, "pause")


def test_kubeadm_is_told_the_local_images_and_this_machine_s_kernel() -> None:
    node = kind_node.NodeImage("local/node:1", "v1.37.2", {"etcd": "v3.7.3", "coredns": "v1.15"})
    config = kind_node.kind_config(node, kube.port_mappings())
    patches = "\n".join(config["kubeadmConfigPatches"])
    assert f"imageRepository: {kind_node.KUBERNETES}" in patches
    assert "imageTag: v3.7.3" in patches and "imageTag: v1.15" in patches
    assert "failCgroupV1: false" in patches
    assert "tcpEstablishedTimeout: 0s" in patches
    assert config["networking"] == {"disableDefaultCNI": True}  # the bridge is in the image
    [only] = config["nodes"]
    assert only["image"] == "local/node:1"
    # The edge's ports on this machine's loopback only.
    assert {m["listenAddress"] for m in only["extraPortMappings"]} == {"127.0.0.1"}


def test_values_files_merge_as_helm_merges_them() -> None:
    base = {"image": {"repository": "r", "tag": "1"}, "services": {"catalog": {"replicas": 2}}}
    override = {"image": {"tag": "2"}, "services": {"catalog": {"logLevel": "DEBUG"}}, "x": [1]}
    assert kube.merged(base, override) == {
        "image": {"repository": "r", "tag": "2"},
        "services": {"catalog": {"replicas": 2, "logLevel": "DEBUG"}},
        "x": [1],
    }
    assert base["image"] == {"repository": "r", "tag": "1"}  # the inputs are left as they were


def test_local_is_for_kind_only(tmp_path: Path) -> None:
    result = CliRunner().invoke(kube.kube, ["up", "minikube", "--local", str(tmp_path)])
    assert result.exit_code == 2 and "--local is for kind" in result.output
