"""One source for Envoy configs: the chart's are the generator's Kubernetes profile,
for the release's namespace, and the real Envoy accepts every one of them."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from groundwork_cli.runtime.pki import Pki, ensure_mesh_certs, ensure_server_cert
from groundwork_envoy import chart, dynamic
from groundwork_envoy.model import load_mesh
from groundwork_envoy.render import render
from tests.chart import by_kind
from tests.chart import render as render_chart
from tests.envoy_check import validate


def _chart_configs(namespace: str) -> dict[str, str]:
    """File name (as the generator names it) -> what the chart mounts: each Envoy's
    bootstrap (NAME.yaml) and its dynamic files (NAME/lds.yaml, ...)."""
    maps = by_kind(render_chart(namespace=namespace), "ConfigMap")
    configs = {}
    for name, config_map in maps.items():
        if name.startswith("envoy-"):
            role = name.removeprefix("envoy-")
            envoy = "edge" if role == "edge" else f"sidecar-{role}"
            for key, text in config_map["data"].items():
                configs[f"{envoy}.yaml" if key == "envoy.yaml" else f"{envoy}/{key}"] = text
    return configs


def test_the_charts_copy_is_the_generators_output() -> None:
    """helm/groundwork/files is refreshed by `python -m groundwork_envoy chart`."""
    expected = chart.chart_files(load_mesh())
    on_disk = {
        str(p.relative_to(chart.CHART_FILES)): p.read_text()
        for p in chart.CHART_FILES.rglob("*.yaml")
    }
    stale = sorted(k for k in expected if on_disk.get(k) != expected[k])
    extra = sorted(set(on_disk) - set(expected))
    assert not stale and not extra, (
        f"chart files drifted from the generator (stale {stale}, extra {extra}): "
        "run `python -m groundwork_envoy chart`"
    )


def test_rendered_chart_configs_equal_the_kubernetes_profile() -> None:
    namespace = "tickets-prod"
    profile = chart.profile(namespace, "cluster.local", f"jaeger.{namespace}.svc.cluster.local")
    expected = render(load_mesh(), profile)
    assert _chart_configs(namespace) == expected


def test_rendered_chart_configs_pass_envoy_validate(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    ensure_server_cert(pki, "edge", ["localhost"], ["127.0.0.1"])
    ensure_mesh_certs(pki, {"edge": "spiffe://groundwork.local/edge"})
    # The chart mounts certificates under /etc/groundwork: the same files, here.
    tls, mesh_tls = tmp_path / "etc" / "tls", tmp_path / "etc" / "mesh"
    tls.mkdir(parents=True)
    mesh_tls.mkdir()
    shutil.copy(pki.cert("edge"), tls / "tls.crt")
    shutil.copy(pki.key("edge"), tls / "tls.key")
    shutil.copy(pki.cert("mesh/edge"), mesh_tls / "tls.crt")
    shutil.copy(pki.key("mesh/edge"), mesh_tls / "tls.key")
    shutil.copy(pki.ca_cert, mesh_tls / "ca.crt")
    files = _chart_configs("shop")
    paths = []
    for name in [n for n in files if "/" not in n]:
        envoy = name.removesuffix(".yaml")
        parts = {k.partition("/")[2]: v for k, v in files.items() if k.startswith(f"{envoy}/")}
        # The whole config Envoy ends up with: bootstrap and dynamic files joined.
        text = yaml.safe_dump(dynamic.join({"bootstrap": files[name], **parts}))
        path = tmp_path / name
        path.write_text(text.replace("/etc/groundwork/", f"{tmp_path}/etc/"))
        paths.append(path)
    assert len(paths) == len(load_mesh().services) + 1
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(validate, paths))
    failures = [f"{p.name}:\n{out}" for p, code, out in results if code != 0]
    assert not failures, "\n".join(failures)
