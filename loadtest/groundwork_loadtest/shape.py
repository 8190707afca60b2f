"""The flash sale's load shape: a ramp to thousands of users within seconds, a
plateau while they race for one event's seats, then nothing."""

from __future__ import annotations

from locust import LoadTestShape

from groundwork_loadtest.sale import FlashSale


class FlashSaleShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        sale = FlashSale(
            getattr(options, "flash_users", 2000),
            getattr(options, "flash_ramp", 10.0),
            getattr(options, "flash_hold", 20.0),
        )
        wanted = sale.at(self.get_run_time())
        if wanted is None:
            return None
        return wanted
