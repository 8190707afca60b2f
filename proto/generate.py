"""Generate everything derived from proto/: Python messages, gRPC stubs, typed
stubs (.pyi, via mypy-protobuf), the descriptor set Envoy uses for transcoding,
and the public API's OpenAPI document (grpc-gateway's protoc-gen-openapiv2, built
from the Go module proxy at the version tests/infra/go/openapiv2 pins).

    python proto/generate.py [--out DIR]

The output is committed (proto/gen/); tests regenerate into a temporary directory
and fail when the committed tree has drifted from the .proto sources.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import sysconfig
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.unknown_fields import UnknownFieldSet
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_ROOT / "gen"
# Inside the generated package, so an installed project finds it with importlib.resources.
DESCRIPTOR_PATH = Path("python/groundwork/descriptors.pb")
# What the edge serves at /openapi.json: the REST mapping of every public method.
OPENAPI_PATH = Path("python/groundwork/openapi.json")


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
    _openapi(includes, out)
    # Regular packages (not namespace packages) so setuptools, mypy and pytest agree.
    for directory in [python_out / "groundwork", *(python_out / "groundwork").rglob("*")]:
        if directory.is_dir():
            (directory / "__init__.py").touch()
    (python_out / "groundwork" / "py.typed").touch()


def _all_sources() -> list[str]:
    return [str(p.relative_to(PROTO_ROOT)) for p in proto_sources()]


def _openapi(includes: list[str], out: Path) -> None:
    """One Swagger 2.0 document for the protos with HTTP rules (the public API;
    internal services have none), field names as the edge prints them."""
    sys.path.insert(0, str(PROTO_ROOT.parent))
    from tests.infra.gobuild import binary

    plugin = binary("protoc-gen-openapiv2")
    public = [
        str(p.relative_to(PROTO_ROOT))
        for p in proto_sources()
        if "(google.api.http)" in p.read_text()
    ]
    scratch = out / "openapi"
    scratch.mkdir()
    options = [
        "allow_merge=true",
        "merge_file_name=openapi",
        "json_names_for_fields=false",
        "disable_default_errors=false",
        "output_format=json",
        # A Go import path per file, which the plugin insists on (no Go is generated).
        *(f"M{source}=groundwork.local/{Path(source).parent}" for source in _all_sources()),
    ]
    _protoc(
        *includes,
        f"--plugin=protoc-gen-openapiv2={plugin}",
        f"--openapiv2_out={scratch}",
        f"--openapiv2_opt={','.join(options)}",
        *public,
    )
    document = json.loads((scratch / "openapi.swagger.json").read_text())
    shutil.rmtree(scratch)
    _describe(document, _access(out / DESCRIPTOR_PATH))
    (out / OPENAPI_PATH).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


# groundwork.api.v1.access and .admission, the MethodOptions extensions (access.proto).
ACCESS_OPTION, ADMISSION_OPTION = 50001, 50002
ACCESS_NAMES = {1: "PUBLIC", 2: "AUTHENTICATED", 3: "ADMIN"}


def _access(descriptor_set: Path) -> dict[str, tuple[str, bool]]:
    """operationId (Service_Method, as the plugin names them) -> (access, admission),
    read from the descriptor set just written: the extensions are unknown fields to
    a plain parse, which needs no generated code (it may be the stale one)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    found = {}
    for proto in files.file:
        for service in proto.service:
            for method in service.method:
                unknown = UnknownFieldSet(method.options)
                options = {unknown[i].field_number: unknown[i].data for i in range(len(unknown))}
                access = ACCESS_NAMES.get(int(options.get(ACCESS_OPTION, 0)), "")
                found[f"{service.name}_{method.name}"] = (
                    access,
                    bool(options.get(ADMISSION_OPTION)),
                )
    return found


def _describe(document: dict[str, Any], access: dict[str, tuple[str, bool]]) -> None:
    """What the plugin cannot know: the API's name, and who may call what (the
    edge's bearer tokens, roles and admission tokens, from the access options)."""
    document["info"] = {
        "title": "Groundwork API",
        "version": "v1",
        "description": (
            "The public REST API of Groundwork, as the edge serves it: each operation"
            " is a gRPC method transcoded by Envoy (the same method is callable as"
            " native gRPC at /<package>.<Service>/<Method>). Errors are google.rpc.Status"
            " in JSON; a 400 carries a google.rpc.BadRequest naming each field."
        ),
    }
    document["securityDefinitions"] = {
        "bearer": {
            "type": "apiKey",
            "in": "header",
            "name": "authorization",
            "description": "`Bearer <access token>` from /v1/auth/login.",
        }
    }
    # A path variable bound to a nested field ({room.event_id}) is named by its last
    # part: the URL is the same, and tools that fill templates with str.format
    # (schemathesis) read a dot as attribute access.
    for path in [p for p in document["paths"] if re.search(r"\{[^}]*\.", p)]:
        item = document["paths"].pop(path)
        renamed = re.sub(r"\{(?:[^}.]*\.)+([^}]*)\}", r"{\1}", path)
        for operation in item.values():
            for parameter in operation["parameters"]:
                if parameter["in"] == "path":
                    parameter["name"] = parameter["name"].rpartition(".")[2]
        document["paths"].setdefault(renamed, {}).update(item)
    for item in document["paths"].values():
        for operation in item.values():
            # An additional binding (HEAD beside GET) is the method's id plus a number.
            level, admission = access[operation["operationId"].rstrip("0123456789")]
            if level == "PUBLIC":
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": []}]
            notes = []
            if level == "ADMIN":
                notes.append("Requires the admin role.")
            if admission:
                notes.append(
                    "When the event has a waiting room, also requires its admission"
                    " token in x-groundwork-admission."
                )
            if notes:
                operation["description"] = " ".join(
                    [operation.get("description", ""), *notes]
                ).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
