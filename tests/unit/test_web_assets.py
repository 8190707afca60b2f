"""The web front end as the edge serves it: every file a route with its type, ETag
and security headers; every module the page imports is served; the vendored QR
library is the release its README names; nothing in the page needs 'unsafe-inline'."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

from groundwork_envoy.model import load_mesh
from groundwork_envoy.profiles import LocalProfile
from groundwork_envoy.render import compile_static
from groundwork_envoy.web_assets import CONTENT_SECURITY_POLICY, assets

WEB = Path(str(resources.files("groundwork_envoy") / "web"))


def _edge_routes(tmp_path: Path) -> list[dict[str, Any]]:
    edge = compile_static(load_mesh(), LocalProfile(load_mesh(), tmp_path, trace_ui="http://j:1"))[
        0
    ]
    listener = next(
        x for x in edge["edge"]["static_resources"]["listeners"] if x["name"] == "edge_http"
    )
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return list(hcm["route_config"]["virtual_hosts"][0]["routes"])


def test_every_file_is_served_with_its_type_etag_and_policy(tmp_path: Path) -> None:
    routes = {
        r["match"]["path"]: r
        for r in _edge_routes(tmp_path)
        if "direct_response" in r and "path" in r["match"]
    }
    served = assets("http://j:1")
    assert {a.path for a in served} <= set(routes)
    assert {
        "/",
        "/web/index.html",
        "/web/app.js",
        "/web/vendor/qrcode.mjs",
        "/web/config.json",
    } <= {a.path for a in served}
    for asset in served:
        route = routes[asset.path]
        assert route["direct_response"]["body"]["inline_string"] == asset.body
        headers = {
            h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]
        }
        assert headers["content-type"] == asset.content_type
        assert headers["etag"] == asset.etag
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["cache-control"] == "no-cache"
    assert routes["/web/config.json"]["direct_response"]["body"]["inline_string"] == (
        '{"trace_ui":"http://j:1"}'
    )


def test_every_module_the_page_imports_is_served() -> None:
    served = {a.path for a in assets()}
    for script in WEB.rglob("*.js"):
        for target in re.findall(r'^import .* from "(\.[^"]+)";$', script.read_text(), re.M):
            path = (script.parent / target).resolve().relative_to(WEB.resolve())
            assert f"/web/{path}" in served, (script.name, target)
    page = (WEB / "index.html").read_text()
    for reference in re.findall(r'(?:src|href)="(/web/[^"]+)"', page):
        assert reference in served


def test_the_page_needs_no_inline_script_or_style() -> None:
    page = (WEB / "index.html").read_text()
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert "<style" not in page and re.search(r"<[^>]*\s(style|on[a-z]+)=", page) is None
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
    for script in WEB.rglob("*.js"):
        # No eval and no HTML from strings: the page builds its DOM node by node.
        text = script.read_text()
        assert "innerHTML" not in text and "eval(" not in text, script.name


def test_the_vendored_qr_library_is_the_release_its_readme_names() -> None:
    readme = (WEB / "vendor" / "README.md").read_text()
    digest = hashlib.sha256((WEB / "vendor" / "qrcode.mjs").read_bytes()).hexdigest()
    assert digest in readme
    assert "Copyright (c) 2009 Kazuhiko Arase" in (WEB / "vendor" / "qrcode.mjs").read_text()
