"""Domain errors, raised by service code and translated to gRPC status (with a
google.rpc.Status carrying machine-readable details) only at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class DomainError(Exception):
    code = code_pb2.INTERNAL
    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        return []

    def to_status(self) -> grpc.Status:
        proto = status_pb2.Status(code=self.code, message=self.message, details=self.details())
        status: grpc.Status = rpc_status.to_status(proto)
        return status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
    code = code_pb2.INVALID_ARGUMENT
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def one(cls, field_name: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field_name, description)])

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [packed]


@dataclass
class Violations:
    """Collects every problem with a request so the caller sees all of them at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


class NotFound(DomainError):
    code = code_pb2.NOT_FOUND
    grpc_code = grpc.StatusCode.NOT_FOUND


class Unavailable(DomainError):
    code = code_pb2.UNAVAILABLE
    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(DomainError):
    code = code_pb2.UNAUTHENTICATED
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = code_pb2.PERMISSION_DENIED
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class AlreadyExists(DomainError):
    code = code_pb2.ALREADY_EXISTS
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
