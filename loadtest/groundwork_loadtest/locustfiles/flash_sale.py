"""flash-sale: thousands of buyers ramped onto one event's seats at once."""

from groundwork_loadtest.shape import FlashSaleShape
from groundwork_loadtest.users import FlashBuyer

__all__ = ["FlashBuyer", "FlashSaleShape"]
