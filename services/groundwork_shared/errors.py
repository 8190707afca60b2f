"""Domain errors, raised by domain and service code. They know no transport: the
common interceptor turns them into gRPC statuses (groundwork_shared.statuses,
one table) at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """A rule of the domain refused the request; its message is for the caller.
    A kind with a `reason` (UPPER_SNAKE) names it for machines too: clients get it
    as a google.rpc.ErrorInfo, so they need not parse the message."""

    reason: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
    """The request itself is wrong: every violation, by field."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def one(cls, field_name: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field_name, description)])


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
    """The thing the request names does not exist."""


class Unavailable(DomainError):
    """Something the request needs cannot be reached now; a retry may succeed."""


class Unauthenticated(DomainError):
    """The caller's credentials are missing or not valid."""


class PermissionDenied(DomainError):
    """The caller may not do this."""


class AlreadyExists(DomainError):
    """What the request would create exists already."""


class FailedPrecondition(DomainError):
    """The request is valid but the resource is not in a state that allows it."""


class Aborted(DomainError):
    """A concurrent request got there first; retrying shows its outcome."""
