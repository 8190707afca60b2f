"""Domain rules know no transport; the interceptor's one table turns their errors
into gRPC statuses."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from groundwork_booking import domain
from groundwork_booking.domain import OrderStatus
from groundwork_payments.domain import check_charge
from groundwork_shared import errors, idempotency, statuses

SERVICES = Path(__file__).resolve().parents[2] / "services"
TRANSPORTS = ("grpc", "grpc_status", "google.rpc", "google.protobuf", "asyncpg", "redis", "httpx")


def _is_transport(name: str) -> bool:
    return any(name == t or name.startswith(f"{t}.") for t in TRANSPORTS)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_domain_modules_import_no_transport() -> None:
    modules = [*SERVICES.glob("groundwork_*/domain.py"), SERVICES / "groundwork_shared/errors.py"]
    assert len(modules) >= 4
    for module in modules:
        transports = {name for name in _imports(module) if _is_transport(name)}
        assert not transports, (module.relative_to(SERVICES), sorted(transports))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument.one("city", "too long"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound("event x not found"), grpc.StatusCode.NOT_FOUND),
        (errors.Unavailable("no payment provider"), grpc.StatusCode.UNAVAILABLE),
        (errors.Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.PermissionDenied("admins only"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.AlreadyExists("taken"), grpc.StatusCode.ALREADY_EXISTS),
        (domain.SeatsUnavailable("A-1 is held"), grpc.StatusCode.FAILED_PRECONDITION),
        (idempotency.KeyReused("other request"), grpc.StatusCode.FAILED_PRECONDITION),
        (domain.PaymentInProgress("charged"), grpc.StatusCode.ABORTED),
        (errors.DomainError("of no kind"), grpc.StatusCode.INTERNAL),
    ],
)
def test_each_domain_error_has_its_status(error: errors.DomainError, code: grpc.StatusCode) -> None:
    status = statuses.to_status(error)
    assert statuses.code_of(error) is code and status.code is code
    assert status.details == error.message


def test_invalid_arguments_carry_every_violation_as_bad_request_details() -> None:
    problems = errors.Violations()
    problems.add("seat_ids[0]", "1 to 64 characters")
    problems.add("event_id", "must be a UUID")
    with pytest.raises(errors.InvalidArgument) as raised:
        problems.raise_if_any()
    status = statuses.to_status(raised.value)
    proto = rpc_status.from_call(_Call(status))
    assert proto is not None
    [packed] = proto.details
    bad_request = error_details_pb2.BadRequest()
    assert packed.Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("seat_ids[0]", "1 to 64 characters"),
        ("event_id", "must be a UUID"),
    ]


class _Call:
    """What rpc_status reads from a finished call: its code, message and trailers."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._status.trailing_metadata)


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_an_order_is_charged_only_while_pending_and_before_its_deadline() -> None:
    later = NOW + timedelta(minutes=1)
    assert domain.needs_payment(OrderStatus.PENDING_PAYMENT, later, NOW) is True
    assert domain.needs_payment(OrderStatus.PAID, NOW - timedelta(days=1), NOW) is False
    with pytest.raises(domain.HoldNotActive, match="order is cancelled"):
        domain.needs_payment(OrderStatus.CANCELLED, later, NOW)
    with pytest.raises(domain.HoldNotActive, match="deadline has passed"):
        domain.needs_payment(OrderStatus.PENDING_PAYMENT, NOW, NOW)


def test_a_charge_request_hears_every_problem_at_once() -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        check_charge(0, "EURO", "", "")
    assert [v.field for v in raised.value.violations] == [
        "amount_cents",
        "currency",
        "order_id",
        "card_token",
    ]
    check_charge(100, "EUR", "order-1", "tok_visa")  # a good one passes
