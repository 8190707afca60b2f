"""Payments service: a simulated payment provider with idempotent charges."""

SERVICE_NAME = "groundwork.payments.v1.PaymentsService"
MIGRATIONS = __path__[0] + "/migrations"
