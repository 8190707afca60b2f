"""Generate everything derived from proto/: Python messages, gRPC stubs, typed
stubs (.pyi, via mypy-protobuf) and the descriptor set Envoy uses for transcoding.

    python proto/generate.py [--out DIR]

The output is committed (proto/gen/); tests regenerate into a temporary directory
and fail when the committed tree has drifted from the .proto sources.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import sysconfig
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_ROOT / "gen"
# Inside the generated package, so an installed project finds it with importlib.resources.
DESCRIPTOR_PATH = Path("python/groundwork/descriptors.pb")


def proto_sources() -> list[Path]:
    return sorted((PROTO_ROOT / "groundwork").rglob("*.proto"))


def _include_paths() -> list[str]:
    # Well-known types ship with grpc_tools; google/api/*.proto with googleapis-common-protos.
    wkt = resources.files("grpc_tools") / "_proto"
    site = Path(sysconfig.get_paths()["purelib"])
    return [str(PROTO_ROOT), str(wkt), str(site)]


def _plugin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{name} not found beside {sys.executable}: install the dev extras")
    return f"--plugin={name}={path}"


ERROR_DETAIL_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]


def _protoc(*args: str) -> None:
    if protoc.main(["grpc_tools.protoc", *args]) != 0:
        raise SystemExit("protoc failed")


def generate(out: Path) -> None:
    python_out = out / "python"
    if out.exists():
        shutil.rmtree(out)
    (python_out / "groundwork").mkdir(parents=True)
    sources = [str(p.relative_to(PROTO_ROOT)) for p in proto_sources()]
    includes = [f"-I{p}" for p in _include_paths()]
    _protoc(
        *includes,
        _plugin("protoc-gen-mypy"),
        _plugin("protoc-gen-mypy_grpc"),
        f"--python_out={python_out}",
        f"--grpc_python_out={python_out}",
        f"--mypy_out={python_out}",
        f"--mypy_grpc_out={python_out}",
        *sources,
    )
    # The error details services attach (google.rpc.BadRequest, ...) go into the
    # descriptor set too, or Envoy cannot print them in transcoded error bodies.
    _protoc(
        *includes,
        f"--descriptor_set_out={out / DESCRIPTOR_PATH}",
        "--include_imports",
        *sources,
        *ERROR_DETAIL_PROTOS,
    )
    # Regular packages (not namespace packages) so setuptools, mypy and pytest agree.
    for directory in [python_out / "groundwork", *(python_out / "groundwork").rglob("*")]:
        if directory.is_dir():
            (directory / "__init__.py").touch()
    (python_out / "groundwork" / "py.typed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
