"""A real browser for the web front end: Debian's chromium, headless, driven by
selenium through Debian's chromedriver of the same version (nothing downloads a
browser; the packages are installed when missing, as h2load is). Every wait is on
a condition in the page, and every browser's console is checked at the end: an
error there (a CSP violation, a failed request, an exception) fails the test."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from groundwork_cli.packages import ensure

# Screenshots of the key screens, kept after the run (CI keeps the directory).
ARTIFACTS = Path(os.environ.get("GROUNDWORK_TEST_ARTIFACTS", "build/test-artifacts")) / "web"


_CLIENT_ERROR = re.compile(r"responded with a status of 4\d\d")


def binaries() -> tuple[str, str]:
    return ensure("chromium", "chromium"), ensure("chromedriver", "chromium-driver")


class Browser:
    """One browser profile (its own cookies): a customer."""

    def __init__(self, base: str, chromium: str, chromedriver: str) -> None:
        self.base = base
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in (
            "--headless=new",
            "--no-sandbox",  # root in CI; the page is our own
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            "--no-first-run",
            "--disable-background-networking",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        self.console: list[dict[str, Any]] = []
        self.expected: list[re.Pattern[str]] = []  # errors a test provoked on purpose

    def open(self, fragment: str = "#/") -> None:
        self.driver.get(f"{self.base}/{fragment}")

    def go(self, fragment: str) -> None:
        """Another view of the page already loaded (no reload)."""
        self.driver.execute_script("location.hash = arguments[0]", fragment)

    def until(self, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        def attempt(_: object) -> Any:
            try:
                return check()
            except (StaleElementReferenceException, NoSuchElementException):
                return False  # the view is being drawn, or redrawn

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                attempt, message=f"timed out waiting for {what}"
            )
        except TimeoutException as timeout_error:
            raise TimeoutException(self._state(what)) from timeout_error

    def _state(self, what: str) -> str:
        """What the page showed when a wait gave up (and a screenshot of it), so a
        failure says why and not only what."""
        shot = self.screenshot("timeout-" + re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-"))
        self.console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]
        shown = self.driver.execute_script(
            "return [location.hash, ...['#notice', '#live', '#last-request']"
            ".map((css) => css + ': ' + (document.querySelector(css)?.textContent ?? '-'))]"
        )
        console = [f"{e['level']} {e['message']}" for e in self.console[-20:]]
        return "\n".join([f"timed out waiting for {what}", *shown, *console, f"screenshot: {shot}"])

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css: str, timeout: float = 30) -> WebElement:
        found: WebElement = self.until(
            lambda: next((e for e in self.all(css) if e.is_displayed()), False), css, timeout
        )
        return found

    def text(self, css: str) -> str:
        return self.find(css).text

    def seat_state(self, seat: str) -> str:
        return str(self.find(f'button[data-seat="{seat}"]').get_attribute("data-state") or "")

    def log_in(self, email: str, password: str) -> None:
        self.open("#/login")
        form = self.shown("form#login")
        form.find_element(By.NAME, "email").send_keys(email)
        form.find_element(By.NAME, "password").send_keys(password)
        form.find_element(By.CSS_SELECTOR, "button").click()
        self.shown("#logout")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def read_qr(self, element: WebElement) -> str:
        """The text of the QR code drawn in `element`, read back from its pixels."""
        image = Image.open(io.BytesIO(element.screenshot_as_png))
        found = zxingcpp.read_barcodes(image)
        assert found, "no QR code in the element"
        return str(found[0].text)

    def errors(self) -> list[dict[str, Any]]:
        """Console errors so far (chromedriver hands each entry out once): anything
        the page or the browser's policies raised, and any request that failed
        outright or answered 5xx. An API's 4xx (a declined card, a queue to join,
        an expired token being refreshed) is an answer the page handles."""
        self.console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]
        return [
            entry
            for entry in self.console
            if entry["level"] == "SEVERE"
            and not (entry["source"] == "network" and _CLIENT_ERROR.search(entry["message"]))
            and not any(pattern.search(entry["message"]) for pattern in self.expected)
        ]

    def close(self) -> None:
        try:
            self.errors()
        finally:
            self.driver.quit()
