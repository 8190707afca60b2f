"""The web front end (web/) as the edge serves it: each file a direct response with
its content type, a strong ETag (so a revisit costs a 304) and the page's security
headers. Served by Envoy itself: a crowd arriving for an on-sale loads the page at
Envoy's rate, and no service has to be up for it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

# Scripts and styles only from this origin, no inline code or eval, no plugins, no
# framing; data: images for the canvases' exports; fetches and WebSockets only to
# this origin (CSP 3's 'self' covers ws:/wss: to the same host).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}

PREFIX = "/web/"


@dataclass(frozen=True)
class Asset:
    path: str  # the URL path
    body: str
    content_type: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body.encode()).hexdigest()[:32] + '"'


def assets(trace_ui: str = "") -> list[Asset]:
    """Every file of web/ (index.html also at /), and /web/config.json telling the
    page what this deployment offers (where its traces can be looked at)."""
    root = resources.files("groundwork_envoy") / "web"
    found: list[Asset] = []

    def walk(directory: Traversable, prefix: str) -> None:
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif (kind := TYPES.get("." + entry.name.rsplit(".", 1)[-1])) is not None:
                found.append(Asset(f"{PREFIX}{prefix}{entry.name}", entry.read_text(), kind))

    walk(root, "")
    index = next(asset for asset in found if asset.path == f"{PREFIX}index.html")
    config = json.dumps({"trace_ui": trace_ui}, separators=(",", ":"))
    return [
        Asset("/", index.body, index.content_type),
        *found,
        Asset(f"{PREFIX}config.json", config, TYPES[".json"]),
    ]
