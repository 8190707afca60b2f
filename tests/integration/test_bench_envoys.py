"""The benchmarks' own Envoys (a direct response, bare proxies, an mTLS pair)
are configs Envoy accepts, with a body that needs quoting."""

from __future__ import annotations

from pathlib import Path

from groundwork_cli import bench_envoys
from groundwork_cli.runtime.pki import Pki, ensure_server_cert
from tests.envoy_check import validate

_HEADER_MUTATION = {
    "name": "envoy.filters.http.header_mutation",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http."
        "header_mutation.v3.HeaderMutation",
        "mutations": {"request_mutations": [{"remove": "x-bench"}]},
    },
}


def test_every_bench_envoy_config_passes_envoy_validate(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    ensure_server_cert(pki, "mesh/bench", ["bench"], [], ["spiffe://groundwork.local/bench"])
    tls = bench_envoys.Tls(
        str(pki.cert("mesh/bench")), str(pki.key("mesh/bench")), str(pki.ca_cert)
    )
    configs = {
        **bench_envoys.direct_config("127.78.2.40", 18100, '{"name": "a \\"quoted\\" name"}'),
        # A filter before the answer, as a benchmark of that filter puts it.
        **bench_envoys.direct_config("127.78.2.40", 18108, "", [_HEADER_MUTATION], name="filtered"),
        "proxy": (bench_envoys.proxy("127.78.2.40", 18102, 18103, "unix:/run/app.sock"), ""),
        "server": (
            bench_envoys.proxy("127.78.2.40", 18106, 18107, "unix:/run/a.sock", downstream_tls=tls),
            "",
        ),
        "client": (
            bench_envoys.proxy("127.78.2.40", 18104, 18105, "127.78.2.40:18106", upstream_tls=tls),
            "",
        ),
    }
    for name, (text, _) in configs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        _, code, output = validate(path)
        assert code == 0, f"{name}: {output}"
