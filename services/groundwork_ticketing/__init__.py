"""Ticketing worker and API: order_paid -> one signed ticket per seat, once."""

SERVICE_NAME = "groundwork.ticketing.v1.TicketingService"
MIGRATIONS = __path__[0] + "/migrations"
