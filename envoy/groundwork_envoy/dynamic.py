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
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

# Route configurations delivered by RDS (the rest stay inline in their listeners).
DYNAMIC_ROUTES = ("edge_routes", "inbound", "outbound")
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def http_managers(listeners: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each listener filter's typed_config (the HTTP connection managers, which hold
    the route configurations), to read or change in place."""
    for listener in listeners:
        for chain in listener.get("filter_chains", []):
            for network_filter in chain.get("filters", []):
                yield network_filter.get("typed_config", {})


def _source(directory: str, file_name: str) -> dict[str, Any]:
    return {
        "path_config_source": {
            "path": f"{directory}/{file_name}",
            "watched_directory": {"path": directory},
        },
        "resource_api_version": "V3",
    }


def _dump(document: dict[str, Any]) -> str:
    # libyaml: the edge's files hold the API's descriptor set; pure Python takes seconds.
    return yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False)


def route_file(name: str) -> str:
    return f"rds-{name}.yaml"


def _discovery(type_url: str, resources: list[dict[str, Any]]) -> str:
    # No version_info: the chart's copy is rendered with placeholders that Helm
    # replaces, so a hash of it would differ from the operator's for the same
    # content. Envoy compares each resource's content itself and skips the same.
    return _dump({"resources": [{"@type": type_url, **resource} for resource in resources]})


def split(config: dict[str, Any], node: tuple[str, str], directory: str) -> dict[str, str]:
    """A full static config -> {"bootstrap": ..., "lds.yaml": ..., "cds.yaml": ...,
    "rds-<name>.yaml": ...}; `directory` is where Envoy will find the files."""
    config = copy.deepcopy(config)
    static = config.pop("static_resources")
    listeners, clusters = static["listeners"], static["clusters"]
    routes: dict[str, dict[str, Any]] = {}
    for hcm in http_managers(listeners):
        name = hcm.get("route_config", {}).get("name")
        if name in DYNAMIC_ROUTES:
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
        "bootstrap": _dump(bootstrap),
        "lds.yaml": _discovery(LISTENER, listeners),
        "cds.yaml": _discovery(CLUSTER, clusters),
    }
    for name, route_config in routes.items():
        files[route_file(name)] = _discovery(ROUTE, [route_config])
    return files


def _resources(text: str) -> list[dict[str, Any]]:
    documents = yaml.load(text, Loader=yaml.CSafeLoader)["resources"]
    return [{k: v for k, v in r.items() if k != "@type"} for r in documents]


def join(files: dict[str, str]) -> dict[str, Any]:
    """The inverse of `split`: one static config from a bootstrap and its dynamic
    files (keys as `split` names them), which `envoy --mode validate` can check
    whole (it does not read dynamic files)."""
    config: dict[str, Any] = yaml.load(files["bootstrap"], Loader=yaml.CSafeLoader)
    config.pop("dynamic_resources")
    config.pop("node")
    listeners = _resources(files["lds.yaml"])
    for hcm in http_managers(listeners):
        if "rds" in hcm:
            name = hcm.pop("rds")["route_config_name"]
            hcm["route_config"] = _resources(files[route_file(name)])[0]
    config["static_resources"] = {
        "listeners": listeners,
        "clusters": _resources(files["cds.yaml"]),
    }
    return config
