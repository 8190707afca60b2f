"""Domain errors as gRPC statuses: the one table from error to status code, and
the google.rpc.Status whose details carry what a machine needs (BadRequest's
field violations). Used by the common interceptor only: domain code raises
groundwork_shared.errors and imports no transport."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from groundwork_shared import errors

# A subclass (booking's SeatsUnavailable) takes its base's code through isinstance;
# the kinds here are siblings, so their order does not matter.
CODES: tuple[tuple[type[errors.DomainError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
)


def code_of(error: errors.DomainError) -> grpc.StatusCode:
    for kind, code in CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL  # a DomainError of no kind above: a bug of ours


# google.rpc.ErrorInfo.domain: who names the reasons.
REASON_DOMAIN = "groundwork.local"


def _details(error: errors.DomainError) -> list[any_pb2.Any]:
    if error.reason is not None:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=REASON_DOMAIN))
        return [info]
    if not isinstance(error, errors.InvalidArgument):
        return []
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations
        ]
    )
    packed = any_pb2.Any()
    packed.Pack(bad_request)
    return [packed]


def to_status(error: errors.DomainError) -> grpc.Status:
    """The status a client receives; the google.rpc code is the gRPC code's number."""
    code = code_of(error).value[0]
    proto = status_pb2.Status(code=code, message=error.message, details=_details(error))
    status: grpc.Status = rpc_status.to_status(proto)
    return status
