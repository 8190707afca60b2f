"""Render the edge and sidecar configs of a profile from mesh.yaml and the templates:
each Envoy's whole config, with the TrafficPolicies compiled in (compiler.py), then
split into its bootstrap and the dynamic files it watches (dynamic.py)."""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from groundwork_envoy import compiler, dynamic, web_assets
from groundwork_envoy.access import methods, streaming_paths
from groundwork_envoy.model import Mesh
from groundwork_envoy.policy import TrafficPolicy
from groundwork_envoy.profiles import EDGE, EnvoyNode, Profile


def descriptor_set() -> bytes:
    """The FileDescriptorSet generated from proto/ (see proto/generate.py)."""
    return (resources.files("groundwork") / "descriptors.pb").read_bytes()


def openapi_document() -> str:
    """The public API's OpenAPI document, compact (the edge serves it inline)."""
    text = (resources.files("groundwork") / "openapi.json").read_text()
    return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)


@functools.cache  # compiling the templates costs more than rendering them
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("groundwork_envoy", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML
    )
    # Cluster names come from one function, here and in the policy compiler.
    env.globals["cluster_name"] = compiler.cluster_name
    return env


@dataclass
class Rendered:
    files: dict[str, str]  # relative path -> content (see `render`)
    outcome: compiler.Outcome  # which policies apply, and why the others do not
    touched: dict[str, list[str]]  # policy name -> the Envoys it changes
    nodes: dict[str, EnvoyNode]  # Envoy name -> who it is (its service, instance)


def _configs(mesh: Mesh, profile: Profile) -> dict[str, tuple[EnvoyNode, dict[str, Any]]]:
    """Envoy name -> (its node, full static config) for the edge and every sidecar."""
    env = _environment()
    descriptor_b64 = base64.b64encode(descriptor_set()).decode()
    texts = {
        EDGE.name: (
            EDGE,
            env.get_template("edge.yaml.j2").render(
                mesh=mesh,
                profile=profile,
                descriptor_b64=descriptor_b64,
                openapi=openapi_document(),
                methods=methods,
                web_assets=web_assets.assets(profile.trace_ui),
                csp=web_assets.CONTENT_SECURITY_POLICY,
            ),
        )
    }
    sidecar = env.get_template("sidecar.yaml.j2")
    for node in profile.sidecars(mesh):
        service, instance = node.service, node.instance
        texts[node.name] = (
            node,
            sidecar.render(
                mesh=mesh,
                profile=profile,
                service=service,
                envoy=node.name,
                instance=instance,
                address=profile.listen_address(service, instance),
                app_target=profile.app_target(mesh, service, instance),
                version=profile.version(mesh, service, instance),
                streaming_paths=streaming_paths(
                    mesh.services[service].grpc_services
                    + mesh.services[service].internal_grpc_services
                ),
            ),
        )
    configs = {}
    for name, (node, text) in texts.items():
        try:
            configs[name] = (node, yaml.load(text, Loader=yaml.CSafeLoader))
        except yaml.YAMLError as error:  # a template bug, caught before Envoy sees it
            raise ValueError(f"rendered {name} is not valid YAML: {error}") from error
    return configs


def compile_static(
    mesh: Mesh, profile: Profile, policies: Iterable[TrafficPolicy] = ()
) -> tuple[dict[str, dict[str, Any]], compiler.Outcome, dict[str, list[str]]]:
    """Every Envoy's config as one static document, policies compiled in (what
    `envoy --mode validate` checks); with the outcome and who each policy touches."""
    outcome = compiler.select(mesh, profile, policies)
    touched: dict[str, list[str]] = {p.name: [] for p in outcome.applied.values()}
    configs = {}
    for name, (node, config) in _configs(mesh, profile).items():
        for policy in compiler.apply(config, mesh, profile, node.service, outcome):
            touched[policy].append(name)
        configs[name] = config
    return configs, outcome, touched


def render_with(mesh: Mesh, profile: Profile, policies: Iterable[TrafficPolicy] = ()) -> Rendered:
    """Per Envoy NAME: NAME.yaml (its bootstrap) and NAME/{lds,cds,rds-*}.yaml (what
    it loads dynamically, from profile.dynamic_dir(NAME))."""
    nodes = {node.name: node for node in (EDGE, *profile.sidecars(mesh))}
    configs, outcome, touched = compile_static(mesh, profile, policies)
    files = {}
    for name, config in configs.items():
        node = nodes[name]
        parts = dynamic.split(config, (node.name, node.service), profile.dynamic_dir(name))
        files[f"{name}.yaml"] = parts.pop("bootstrap")
        for file_name, text in parts.items():
            files[f"{name}/{file_name}"] = text
    return Rendered(files, outcome, touched, nodes)


def render(mesh: Mesh, profile: Profile, policies: Iterable[TrafficPolicy] = ()) -> dict[str, str]:
    return render_with(mesh, profile, policies).files


def write(configs: dict[str, str], directory: Path) -> list[Path]:
    """Write each file by atomic rename: a running Envoy watching the directory sees
    a whole new file or the old one, never half of one. Dynamic files are written
    clusters first, so a route never names a cluster Envoy has not been given yet."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sorted(configs.items(), key=lambda item: _write_order(item[0])):
        path = directory / name  # a name may hold a subdirectory
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_text() == text:
            paths.append(path)
            continue  # no rename: a watching Envoy would reload for nothing
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_text(text)
        os.replace(staging, path)
        paths.append(path)
    return paths


def _write_order(name: str) -> tuple[int, str]:
    file_name = name.rsplit("/", 1)[-1]
    rank = {"cds.yaml": 0, "lds.yaml": 2}.get(file_name, 1 if file_name.startswith("rds-") else 3)
    return rank, name
