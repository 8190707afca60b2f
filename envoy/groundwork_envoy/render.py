"""Render the edge and sidecar configs of a profile from mesh.yaml and the templates."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path

import jinja2
import yaml

from groundwork_envoy.access import methods
from groundwork_envoy.model import Mesh
from groundwork_envoy.profiles import Profile


def descriptor_set() -> bytes:
    """The FileDescriptorSet generated from proto/ (see proto/generate.py)."""
    return (resources.files("groundwork") / "descriptors.pb").read_bytes()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("groundwork_envoy", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML
    )


def render(mesh: Mesh, profile: Profile) -> dict[str, str]:
    """File name -> Envoy config (YAML) for the edge and every sidecar of the profile."""
    env = _environment()
    descriptor_b64 = base64.b64encode(descriptor_set()).decode()
    configs = {
        "edge.yaml": env.get_template("edge.yaml.j2").render(
            mesh=mesh, profile=profile, descriptor_b64=descriptor_b64, methods=methods
        )
    }
    sidecar = env.get_template("sidecar.yaml.j2")
    for file_name, service, instance in profile.config_names(mesh):
        configs[file_name] = sidecar.render(
            mesh=mesh,
            profile=profile,
            service=service,
            address=profile.listen_address(service, instance),
            app_target=profile.app_target(mesh, service, instance),
        )
    for name, text in configs.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as error:  # a template bug, caught before Envoy sees it
            raise ValueError(f"rendered {name} is not valid YAML: {error}") from error
    return configs


def write(configs: dict[str, str], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in configs.items():
        path = directory / name  # a name may hold a subdirectory (the chart's envoy/)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths
