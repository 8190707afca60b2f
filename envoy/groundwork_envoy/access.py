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
    # A streaming RPC: never buffered, no route timeout (the client's deadline bounds it).
    streaming: bool = False
    # Says when to call again (a poll): no global per-user limit at the edge.
    paced: bool = False

    @property
    def retried_when_slow(self) -> bool:
        """A read is tried again on another host after a slow try (per-try
        timeout); a write only when it never reached a service. So is a paced
        poll: retrying its slow answers doubles a crowd's load on the waiting room
        just when it is slowest (a sale had 1,086 polls answered 504 after 3 s
        tries, their retries overflowing the circuit breaker)."""
        return self.read and not self.paced


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
        streaming = method.client_streaming or method.server_streaming
        paced = bool(options.Extensions[access_pb2.paced])
        result.append(Method(path, access, bool(rule.get), admission, streaming, paced))
    return result


REFLECTION_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)


def streaming_paths(grpc_services: list[str]) -> list[str]:
    """The paths of the streaming RPCs a gRPC server serves: its services' and
    server reflection's (every service answers reflection). Services whose
    descriptors are not generated here (Envoy's rate limit API) have none."""
    _load_generated()
    paths = []
    for name in grpc_services:
        try:
            service = descriptor_pool.Default().FindServiceByName(name)
        except KeyError:
            continue
        paths += [
            f"/{service.full_name}/{m.name}"
            for m in service.methods
            if m.client_streaming or m.server_streaming
        ]
    return [*paths, *REFLECTION_PATHS]
