"""Every image the chart runs, built on this machine by `groundwork kube images`
(podman, a Debian base from Debian's packages, the wheels' Envoy, Postgres and
Valkey, the project's Jaeger build), then each run for real as the chart runs it:
its non-root uid, a read-only root file system, the probes' own commands.

Built once per content: the second build of the same inputs builds nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from tests.conftest import eventually
from tests.infra import gobuild

HOST = "127.78.9.1"  # where the test's containers publish their ports

# Every image built from nothing on a fresh machine: a bound, not a figure.
pytestmark = pytest.mark.timeout(1800)


def _groundwork(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "groundwork_cli", *args],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    values = tmp_path_factory.mktemp("images") / "values.yaml"
    jaeger = gobuild.binary("jaeger")
    _groundwork("kube", "images", "--jaeger", str(jaeger), "--values-out", str(values))
    # The same inputs again: every image is found by its content address.
    again = _groundwork("kube", "images", "--jaeger", str(jaeger))
    lines = [line for line in again.splitlines() if line.startswith("localhost/")]
    assert len(lines) == 7 and all(line.endswith("up to date") for line in lines), again
    return dict(yaml.safe_load(values.read_text()))


def _reference(values: dict[str, Any], *keys: str) -> str:
    node = values
    for key in keys:
        node = node[key]
    assert node["pullPolicy"] == "Never"
    return f"{node['repository']}:{node['tag']}"


@pytest.fixture
def container() -> Iterator[list[str]]:
    """Names of containers a test started; removed after it, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        _podman("rm", "--force", "--time", "1", name, check=False)


def _owned(directory: Path, uid: int) -> Path:
    """A directory the image's user owns, to mount as its data volume."""
    directory.mkdir()
    os.chown(directory, uid, uid)
    return directory


def _run(names: list[str], name: str, *args: str) -> None:
    names.append(name)
    _podman("run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp", *args)


def test_services_image_runs_as_its_user_on_a_read_only_root(built: dict[str, Any]) -> None:
    for keys in (("image",), ("operator", "image"), ("loadtest", "image")):
        reference = _reference(built, *keys)
        probe = "import os, groundwork_catalog, groundwork_booking; print(os.getuid())"
        result = _podman("run", "--rm", "--read-only", reference, "python", "-c", probe)
        assert result.stdout.strip() == "10001", keys
    # The operator renders Envoy configs: the generated OpenAPI document ships too.
    render = "from groundwork_envoy.render import openapi_document as d; print(len(d()))"
    out = _podman("run", "--rm", _reference(built, "operator", "image"), "python", "-c", render)
    assert int(out.stdout) > 10_000


def test_envoy_image_is_the_wheels_envoy(built: dict[str, Any]) -> None:
    result = _podman("run", "--rm", "--read-only", _reference(built, "envoy", "image"), "--version")
    assert "1.40.0" in result.stdout


def test_postgres_image_initialises_and_takes_password_logins(
    built: dict[str, Any], container: list[str], tmp_path: Path
) -> None:
    data = _owned(tmp_path / "data", 999)
    _run(
        container,
        f"gw-test-postgres-{tmp_path.name[-8:]}",
        "-v",
        f"{data}:/var/lib/postgresql/data",
        "-e",
        "POSTGRES_USER=groundwork",
        "-e",
        "POSTGRES_PASSWORD=not-a-secret",
        "-e",
        "POSTGRES_DB=postgres",
        "-e",
        "PGDATA=/var/lib/postgresql/data/pgdata",
        "-p",
        f"{HOST}:5432:5432",
        _reference(built, "postgres", "image"),
    )
    name = container[-1]
    ready = ["exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "groundwork", "-d", "postgres"]
    eventually(lambda: _podman(*ready, check=False).returncode == 0, timeout=60)

    async def version(password: str) -> str:
        url = f"postgresql://groundwork:{password}@{HOST}:5432/postgres"
        conn = await asyncpg.connect(url, ssl=False)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    assert asyncio.run(version("not-a-secret")).startswith("18.")
    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(version("wrong"))


def test_valkey_image_serves_with_its_config_and_answers_the_probe(
    built: dict[str, Any], container: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir(mode=0o755)  # readable by the image's uid (pytest's own dirs are 0700)
    (config / "valkey.conf").write_text("requirepass not-a-secret\nbind 0.0.0.0\nport 6379\n")
    data = _owned(tmp_path / "data", 999)
    _run(
        container,
        f"gw-test-valkey-{tmp_path.name[-8:]}",
        "-v",
        f"{config}:/etc/valkey:ro",
        "-v",
        f"{data}:/data",
        "-e",
        "REDISCLI_AUTH=not-a-secret",
        _reference(built, "redis", "image"),
        "/etc/valkey/valkey.conf",
    )
    probe = ["exec", container[-1], "sh", "-c", "valkey-cli ping | grep -q PONG"]
    eventually(lambda: _podman(*probe, check=False).returncode == 0, timeout=60)
    # Without the password the same probe fails: the config file was read.
    refused = ["exec", "-e", "REDISCLI_AUTH=", container[-1], "valkey-cli", "ping"]
    assert "NOAUTH" in _podman(*refused, check=False).stdout


def test_jaeger_image_serves_its_ui(built: dict[str, Any], container: list[str]) -> None:
    _run(
        container,
        "gw-test-jaeger",
        "-p",
        f"{HOST}:16686:16686",
        _reference(built, "jaeger", "image"),
    )
    reply = eventually(
        lambda: httpx.get(f"http://{HOST}:16686/", timeout=2), timeout=60, errors=(httpx.HTTPError,)
    )
    assert reply.status_code == 200
