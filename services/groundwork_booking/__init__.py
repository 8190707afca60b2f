"""Booking service: seat holds and orders, the ACID core of the system."""

SERVICE_NAME = "groundwork.booking.v1.BookingService"
MIGRATIONS = __path__[0] + "/migrations"
STREAM = "booking"
