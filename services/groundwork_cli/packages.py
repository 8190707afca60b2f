"""Debian packages the benchmarks run (h2load from nghttp2-client), installed
when missing by the project itself, pinned by the distribution."""

from __future__ import annotations

import os
import shutil
import subprocess


class MissingTool(Exception):
    pass


def ensure(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is
    missing and this process may (root, apt-get present)."""
    found = shutil.which(binary)
    if found:
        return found
    _install(package, f"{binary} is missing: install the {package} package")
    found = shutil.which(binary)
    if not found:
        raise MissingTool(f"installing {package} brought no {binary}")
    return found


def _install(package: str, missing: str) -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise MissingTool(missing)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for dpkg's lock rather than fail on it: the test lanes may install at once.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    command = [*apt, "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        # A stale package index is the usual cause: refresh it once and retry.
        subprocess.run([*apt, "update"], env=env, capture_output=True, timeout=900)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise MissingTool(f"installing {package} failed: {result.stderr.strip()[-400:]}")


def ensure_package(package: str) -> None:
    """Debian's `package` installed (for packages that bring no binary of their
    own to look for: plugins, helpers)."""
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    if installed.returncode != 0 or "install ok installed" not in installed.stdout:
        _install(package, f"the {package} package is missing: install it")
