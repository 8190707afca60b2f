"""Go programs the tests run for real (Jaeger, the Kubernetes control plane:
etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok for the
simulated node and kubelet, kube-proxy and CoreDNS for the real one, and
protoc-gen-openapiv2, which proto/generate.py runs, and grpcurl and grpcui for
the edge's server reflection),
built from the Go module proxy once per pinned version and cached.

Each program has a wrapper module under tests/infra/go/<module>/ whose go.mod pins it
with a `tool` directive and whose committed go.sum pins every dependency, so a build
on a fresh machine checks each download against the hashes here.

    python -m tests.infra.gobuild jaeger     # build if needed, print the binary's path
    python -m tests.infra.gobuild all        # every program (make test does this)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from groundwork_cli import kind_node

MODULES = Path(__file__).parent / "go"


@dataclass(frozen=True)
class Program:
    name: str
    module: str  # the Go module that provides it, pinned in the wrapper's go.mod
    package: str
    wrapper_name: str = ""  # the wrapper module's directory, when not `name`
    # Go packages whose version variables (-X) take the pinned version: without them
    # a binary built as a module calls itself v0.0.0 (and Helm refuses that cluster).
    version_packages: tuple[str, ...] = ()
    # Other string variables (-X) that take the pinned version, as they are.
    version_variables: tuple[str, ...] = ()

    def ldflags(self) -> str:
        flags = ["-s", "-w"]
        version = self.version()
        major, minor = version.lstrip("v").split(".")[:2]
        for package in self.version_packages:
            flags += [
                f"-X {package}.gitVersion={version}",
                f"-X {package}.gitMajor={major}",
                f"-X {package}.gitMinor={minor}",
                f"-X {package}.gitTreeState=clean",
            ]
        flags += [f"-X {variable}={version}" for variable in self.version_variables]
        return " ".join(flags)

    @property
    def wrapper(self) -> Path:
        return MODULES / (self.wrapper_name or self.name)

    def version(self) -> str:
        """The pinned version, read from the wrapper's go.mod: one source of truth."""
        go_mod = (self.wrapper / "go.mod").read_text()
        found = re.search(rf"^\s*{re.escape(self.module)} (v\S+)", go_mod, re.MULTILINE)
        if not found:
            raise RuntimeError(f"{self.wrapper / 'go.mod'} does not pin {self.module}")
        return found.group(1)


PROGRAMS = {
    p.name: p
    for p in (
        Program(
            name="jaeger",
            module="github.com/jaegertracing/jaeger",
            package="github.com/jaegertracing/jaeger/cmd/jaeger",
        ),
        *(
            Program(
                name=command,
                module="k8s.io/kubernetes",
                package=f"k8s.io/kubernetes/cmd/{command}",
                wrapper_name="kube",
                version_packages=(
                    "k8s.io/component-base/version",
                    "k8s.io/client-go/pkg/version",
                ),
            )
            for command in (
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kubelet",
                "kube-proxy",
                "kubeadm",
                "kubectl",
            )
        ),
        Program(
            name="etcd", module="go.etcd.io/etcd/server/v3", package="go.etcd.io/etcd/server/v3"
        ),
        Program(name="kwok", module="sigs.k8s.io/kwok", package="sigs.k8s.io/kwok/cmd/kwok"),
        Program(name="kind", module="sigs.k8s.io/kind", package="sigs.k8s.io/kind"),
        Program(
            name="local-path-provisioner",
            module="github.com/rancher/local-path-provisioner",
            package="github.com/rancher/local-path-provisioner",
            version_variables=("main.VERSION",),
        ),
        Program(
            name="coredns",
            module="github.com/coredns/coredns",
            package="github.com/coredns/coredns",
        ),
        Program(
            name="grpcurl",
            module="github.com/fullstorydev/grpcurl",
            package="github.com/fullstorydev/grpcurl/cmd/grpcurl",
            version_variables=("main.version",),
        ),
        Program(
            name="grpcui",
            module="github.com/fullstorydev/grpcui",
            package="github.com/fullstorydev/grpcui/cmd/grpcui",
            version_variables=("main.version",),
        ),
        Program(
            name="protoc-gen-openapiv2",
            module="github.com/grpc-ecosystem/grpc-gateway/v2",
            package="github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2",
            wrapper_name="openapiv2",
        ),
    )
}


def cache_root() -> Path:
    configured = os.environ.get("GROUNDWORK_TOOLS_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "groundwork"


class BuildFailed(RuntimeError):
    pass


def binary(name: str) -> Path:
    """The program's binary, built first if this version was never built here."""
    program = PROGRAMS[name]
    target = cache_root() / name / program.version() / name
    if target.exists():
        return target
    go = shutil.which("go")
    if not go:
        raise BuildFailed(f"building {name} needs the Go toolchain (`go` on PATH)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time per program and version, even across test processes.
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            built = Path(scratch) / name
            result = subprocess.run(
                [
                    go,
                    "build",
                    "-trimpath",
                    f"-ldflags={program.ldflags()}",
                    "-o",
                    str(built),
                    program.package,
                ],
                cwd=program.wrapper,
                # Readonly: go.sum must already hold every hash, so nothing unpinned slips in.
                env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise BuildFailed(f"go build {program.package} failed:\n{result.stderr[-4000:]}")
            built.rename(target)
    return target


def module_dir(name: str) -> Path:
    """The source tree of the module that provides `name`, as pinned (kind's node
    image takes kind's own files from it)."""
    program = PROGRAMS[name]
    found = subprocess.run(
        ["go", "mod", "download", "-json", f"{program.module}@{program.version()}"],
        cwd=program.wrapper,
        env={**os.environ, "GOFLAGS": "-mod=readonly"},
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise BuildFailed(f"go mod download {program.module}: {found.stderr[-2000:]}")
    return Path(json.loads(found.stdout)["Dir"])


# What `groundwork kube up kind --local DIR` takes from DIR: kind, the node image's
# binaries, Jaeger for the chart, and kind's own node files.
KIND_LOCAL = ("kind", *kind_node.BINARIES, "jaeger")
KIND_BASE_FILES = "kind-base-files"


def link_kind_local(into: Path) -> Path:
    """Every program `kube up kind --local` needs, built if needed, linked into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    links = {name: binary(name) for name in KIND_LOCAL}
    links[KIND_BASE_FILES] = module_dir("kind") / "images" / "base" / "files"
    for name, target in links.items():
        link = into / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return into


def main(argv: list[str]) -> int:
    if argv[:1] == ["--kind-local"] and len(argv) == 2:
        try:
            print(link_kind_local(Path(argv[1])))
        except BuildFailed as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    names = list(PROGRAMS) if argv == ["all"] else argv
    if not names or any(name not in PROGRAMS for name in names):
        choices = "|".join([*PROGRAMS, "all"])
        print(f"usage: python -m tests.infra.gobuild {{{choices}}} ...", file=sys.stderr)
        print("       python -m tests.infra.gobuild --kind-local DIR", file=sys.stderr)
        return 2
    for name in names:
        try:
            print(binary(name))
        except BuildFailed as error:
            print(error, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
