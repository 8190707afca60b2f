"""buy: log in, hold, order, pay, wait for the ticket."""

from groundwork_loadtest.users import BuyerUser

__all__ = ["BuyerUser"]
