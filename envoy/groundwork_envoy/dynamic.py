"""A rendered config split for Envoy's file-based dynamic configuration.

The bootstrap keeps what never changes while Envoy runs (admin, runtime, overload
manager, extensions) and points at files beside it: listeners (LDS), clusters
(CDS) and one file per route configuration (RDS). Envoy watches their directory
and reloads a file when one is moved into it: the local mesh writes by atomic
rename, and the kubelet updates a mounted ConfigMap the same way. Routes change
in place on open connections; a changed cluster is warmed before it replaces the
old one; listeners, which would drain their connections, never change with a
policy (its filters are always in the chain, idle until a route enables them)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import yaml

from groundwork_envoy.compiler import DYNAMIC_ROUTES

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def _source(directory: str, file_name: str) -> dict[str, Any]:
    return {
        "path_config_source": {
            "path": f"{directory}/{file_name}",
            "watched_directory": {"path": directory},
        },
        "resource_api_version": "V3",
    }


def route_file(name: str) -> str:
    return f"rds-{name}.yaml"


def _discovery(type_url: str, resources: list[dict[str, Any]]) -> str:
    typed = [{"@type": type_url, **resource} for resource in resources]
    # Same content, same version: Envoy then has nothing to do.
    version = hashlib.sha256(json.dumps(typed, sort_keys=True).encode()).hexdigest()[:16]
    return yaml.safe_dump({"version_info": version, "resources": typed}, sort_keys=False)


def split(config: dict[str, Any], node: tuple[str, str], directory: str) -> dict[str, str]:
    """A full static config -> {"bootstrap": ..., "lds.yaml": ..., "cds.yaml": ...,
    "rds-<name>.yaml": ...}; `directory` is where Envoy will find the files."""
    config = copy.deepcopy(config)
    static = config.pop("static_resources")
    listeners, clusters = static["listeners"], static["clusters"]
    routes: dict[str, dict[str, Any]] = {}
    for listener in listeners:
        for chain in listener.get("filter_chains", []):
            for network_filter in chain.get("filters", []):
                hcm = network_filter.get("typed_config", {})
                route_config = hcm.get("route_config")
                if not route_config or route_config.get("name") not in DYNAMIC_ROUTES:
                    continue
                name = route_config["name"]
                routes[name] = hcm.pop("route_config")
                hcm["rds"] = {
                    "route_config_name": name,
                    "config_source": _source(directory, route_file(name)),
                }
    node_id, node_cluster = node
    bootstrap = {
        **config,
        "node": {"id": node_id, "cluster": node_cluster},
        "dynamic_resources": {
            "lds_config": _source(directory, "lds.yaml"),
            "cds_config": _source(directory, "cds.yaml"),
        },
    }
    files = {
        "bootstrap": yaml.safe_dump(bootstrap, sort_keys=False),
        "lds.yaml": _discovery(LISTENER, listeners),
        "cds.yaml": _discovery(CLUSTER, clusters),
    }
    for name, route_config in routes.items():
        files[route_file(name)] = _discovery(ROUTE, [route_config])
    return files
