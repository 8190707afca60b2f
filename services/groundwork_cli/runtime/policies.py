"""TrafficPolicies of the local mesh: kept as files in the state directory and
compiled into every Envoy's dynamic config files, which the running Envoys
reload by themselves (no restart). What the operator does on Kubernetes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml

from groundwork_cli.runtime.plan import Plan
from groundwork_envoy.policy import PolicyError, TrafficPolicy, load
from groundwork_envoy.render import Rendered, render_with, write


def _read(plan: Plan) -> tuple[list[TrafficPolicy], dict[str, str]]:
    """The stored policies, and why any stored file is not one (hand-edited?)."""
    directory = plan.layout.policies
    found, errors = [], {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            found.append(load(path.read_text()))
        except PolicyError as error:
            errors[path.stem] = f"{path}: {error}"
    return found, errors


def stored(plan: Plan) -> list[TrafficPolicy]:
    return _read(plan)[0]


@dataclass
class Review:
    policies: list[TrafficPolicy]  # the stored ones
    rendered: Rendered  # the mesh's Envoy configs with them
    not_applied: dict[str, str]  # name -> why the mesh does not run it


def review(plan: Plan) -> Review:
    """The stored policies, rendered, and those the mesh does not run (`up` warns
    of them, `policy list` shows them)."""
    found, errors = _read(plan)
    rendered = render_with(plan.mesh, plan.profile, found)
    return Review(found, rendered, errors | rendered.outcome.errors)


def deliver(plan: Plan) -> Rendered:
    """Render every Envoy's config with the stored policies and write what changed."""
    rendered = render_with(plan.mesh, plan.profile, stored(plan))
    write(rendered.files, plan.layout.envoy)
    return rendered


def apply(plan: Plan, text: str) -> tuple[TrafficPolicy, Rendered]:
    """Validate, compile and deliver a policy; a policy that cannot apply is refused
    before anything is written, so the mesh keeps running what it had."""
    policy = load(text)
    existing = stored(plan)
    others = [p for p in existing if p.name != policy.name]
    previous = next((p for p in existing if p.name == policy.name), None)
    if previous:
        changed = previous.spec != policy.spec
        generation = previous.generation + 1 if changed else previous.generation
        policy = policy.model_copy(update={"generation": generation})
    rendered = render_with(plan.mesh, plan.profile, [*others, policy])
    if policy.name in rendered.outcome.errors:
        raise PolicyError(rendered.outcome.errors[policy.name])
    document = yaml.safe_load(text)
    document.setdefault("metadata", {})["generation"] = policy.generation
    directory = plan.layout.policies
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".{policy.name}.yaml.tmp"
    staging.write_text(yaml.safe_dump(document, sort_keys=False))
    os.replace(staging, directory / f"{policy.name}.yaml")
    write(rendered.files, plan.layout.envoy)
    return policy, rendered


def delete(plan: Plan, name: str) -> Rendered:
    path = plan.layout.policies / f"{name}.yaml"
    if not path.exists():
        names = ", ".join(p.name for p in stored(plan)) or "none"
        raise PolicyError(f"no TrafficPolicy named {name!r} (applied: {names})")
    path.unlink()
    return deliver(plan)
