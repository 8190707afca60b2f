"""python -m groundwork_envoy {local,kubernetes} OUT_DIR: render every Envoy config.
python -m groundwork_envoy chart: refresh the Helm chart's copy (helm/groundwork/files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from groundwork_envoy.chart import CHART_FILES, write_chart_files
from groundwork_envoy.model import load_mesh
from groundwork_envoy.profiles import KubernetesProfile, LocalProfile, Profile
from groundwork_envoy.render import render, write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", choices=["local", "kubernetes", "chart"])
    parser.add_argument("out", type=Path, nargs="?", default=CHART_FILES)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".groundwork"),
        help="local profile: where the edge certificate lives",
    )
    parser.add_argument("--namespace", default="groundwork", help="kubernetes profile")
    args = parser.parse_args()
    mesh = load_mesh()
    if args.profile == "chart":
        for path in write_chart_files(mesh, args.out):
            print(path)  # noqa: T201
        return
    profile: Profile = (
        LocalProfile(mesh, args.state_dir.resolve())
        if args.profile == "local"
        else KubernetesProfile(namespace=args.namespace)
    )
    for path in write(render(mesh, profile), args.out):
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
