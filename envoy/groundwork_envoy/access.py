"""Per-method access policy and HTTP verbs, read from the protos' options
(groundwork.api.v1.access and google.api.http) in the generated descriptors."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from google.api import annotations_pb2
from google.protobuf import descriptor_pool

import groundwork
from groundwork.api.v1 import access_pb2


@dataclass(frozen=True)
class Method:
    path: str  # /package.Service/Method
    access: str  # PUBLIC, AUTHENTICATED or ADMIN
    read: bool  # a GET in its google.api.http rule: safe to retry
    # Names an event whose waiting room, if it has one, must have admitted the caller.
    admission: bool = False


@cache
def _load_generated() -> None:
    """Import every generated module so its descriptors join the default pool."""
    for module in pkgutil.walk_packages(groundwork.__path__, "groundwork."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def methods(grpc_service: str) -> list[Method]:
    _load_generated()
    service = descriptor_pool.Default().FindServiceByName(grpc_service)
    result = []
    for method in service.methods:
        options = method.GetOptions()
        access = access_pb2.Access.Name(options.Extensions[access_pb2.access])
        if access == "ACCESS_UNSPECIFIED":
            raise ValueError(f"{service.full_name}/{method.name} declares no access option")
        rule = options.Extensions[annotations_pb2.http]
        admission = bool(options.Extensions[access_pb2.admission])
        path = f"/{service.full_name}/{method.name}"
        result.append(Method(path, access, bool(rule.get), admission))
    return result
