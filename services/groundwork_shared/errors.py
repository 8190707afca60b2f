"""Domain errors, raised by service code and translated to gRPC status (with a
google.rpc.Status carrying machine-readable details) only at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class DomainError(Exception):
    """Subclasses name their gRPC status; the google.rpc code is the same number."""

    grpc_code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        return []

    def to_status(self) -> grpc.Status:
        code = self.grpc_code.value[0]
        proto = status_pb2.Status(code=code, message=self.message, details=self.details())
        status: grpc.Status = rpc_status.to_status(proto)
        return status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
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
    grpc_code = grpc.StatusCode.NOT_FOUND


class Unavailable(DomainError):
    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(DomainError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class AlreadyExists(DomainError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """The request is valid but the resource is not in a state that allows it."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrent request got there first; retrying shows its outcome."""

    grpc_code = grpc.StatusCode.ABORTED
