"""The public API as the edge routes it, and server reflection that reveals it
and nothing else.

A service is public when every one of its methods declares a
`groundwork.api.v1.access` option (the edge refuses to route a method without
one, and internal services declare none). The reflection pool holds copies of
the files that define public services, with any other service stripped from
them, and the files they import: `grpcurl list`, `describe` and calls work
against the edge without proto files, and an internal service (payments, the
rate limiter) is not named. Every public service answers reflection for the
whole public API, so the edge may send it to any of them.

Server reflection is served as v1 and v1alpha: the two protocols are the same
messages under two package names, so one servicer answers both.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

from groundwork.api.v1 import access_pb2

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = reflection.SERVICE_NAME


@cache
def _files() -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    """Every file of the generated descriptor set, imports before importers."""
    data = (resources.files("groundwork") / "descriptors.pb").read_bytes()
    return tuple(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def _declares_access(method: descriptor_pb2.MethodDescriptorProto) -> bool:
    return method.options.HasExtension(access_pb2.access)


def _is_public(service: descriptor_pb2.ServiceDescriptorProto) -> bool:
    return bool(service.method) and all(_declares_access(m) for m in service.method)


@cache
def service_names() -> tuple[str, ...]:
    """The public gRPC services' full names, sorted."""
    return tuple(
        sorted(
            f"{file.package}.{service.name}"
            for file in _files()
            for service in file.service
            if _is_public(service)
        )
    )


@cache
def pool() -> descriptor_pool.DescriptorPool:
    """A pool with the public services and every type they reach, nothing else."""
    files = {file.name: file for file in _files()}
    needed: set[str] = set()

    def need(name: str) -> None:
        if name not in needed:
            needed.add(name)
            for dependency in files[name].dependency:
                need(dependency)

    for file in _files():
        if any(_is_public(s) for s in file.service):
            need(file.name)
    public = descriptor_pool.DescriptorPool()
    for file in _files():  # dependencies first, as protoc writes them
        if file.name not in needed:
            continue
        copy = descriptor_pb2.FileDescriptorProto()
        copy.CopyFrom(file)
        del copy.service[:]
        copy.service.extend(s for s in file.service if _is_public(s))
        public.Add(copy)
    return public


class _MethodsResolve:
    """A pool that also finds the file of a method's full name (what `grpcurl
    describe pkg.Service.Method` asks for), which protobuf's pool does not."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str) -> Any:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service, _, method = symbol.rpartition(".")
            if not service or method not in self._pool.FindServiceByName(service).methods_by_name:
                raise
            return self._pool.FindFileContainingSymbol(service)


def enable_reflection(
    server: grpc.aio.Server,
    names: Sequence[str],
    descriptors: descriptor_pool.DescriptorPool | None = None,
) -> None:
    """Server reflection (v1 and v1alpha) listing `names`, answered from
    `descriptors` (the process's default pool when None)."""
    found = _MethodsResolve(descriptors or descriptor_pool.Default())
    servicer = reflection.aio.ReflectionServicer(names, pool=found)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (REFLECTION_V1ALPHA, REFLECTION_V1):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),)
        )
