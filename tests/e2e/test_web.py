"""The web front end through the real edge, in a real browser (Debian's chromium,
headless): browse and page, two customers watching one seat map while one buys,
the waiting room admitting a queued browser, a declined card, a ticket's QR code
and signature, the session in httpOnly cookies with CSRF protection on writes,
and the page under its Content-Security-Policy with a clean console throughout."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from groundwork_envoy.web_assets import CONTENT_SECURITY_POLICY
from tests import edge_flows
from tests.conftest import eventually
from tests.e2e.browser import Browser, binaries
from tests.e2e.conftest import Mesh, Receiver

PASSWORD = edge_flows.PASSWORD


def _customer(mesh: Mesh) -> str:
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    reply = httpx.post(f"{mesh.http}/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return email


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    return binaries()


@pytest.fixture
def browsers(mesh: Mesh, chromium: tuple[str, str]) -> Iterator[Callable[[], Browser]]:
    """Fresh browser profiles on demand; each one's console must stay free of errors."""
    opened: list[Browser] = []

    def new() -> Browser:
        browser = Browser(mesh.http, *chromium)
        opened.append(browser)
        return browser

    yield new
    errors = []
    for browser in opened:
        try:
            errors.extend(browser.errors())
        finally:
            browser.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def admin(mesh: Mesh) -> str:
    return mesh.admin_token()


def _event_page(browser: Browser, event_id: str) -> None:
    browser.go(f"#/events/{event_id}")
    browser.until(lambda: browser.text("#live") == "live", "the seat map's WebSocket")
    browser.until(
        lambda: browser.find("#seatmap").get_attribute("aria-busy") == "false", "availability"
    )


def _buy(browser: Browser, seat: str, card: str) -> str:
    """Select `seat`, hold, order and pay with `card` on the open event page; the
    payment's result as the page says it."""
    browser.find(f'button[data-seat="{seat}"]').click()
    browser.find("#hold").click()
    browser.shown("#hold-panel")
    browser.find("#order").click()
    browser.shown("#pay-panel")
    Select(browser.find("#card")).select_by_value(card)
    browser.find("#pay").click()
    return str(
        browser.until(
            lambda: (result := browser.find("#pay-result")).get_attribute("class") and result.text,
            "the payment's result",
        )
    )


def test_the_page_is_served_by_the_edge_with_its_security_headers(mesh: Mesh) -> None:
    page = httpx.get(f"{mesh.http}/", headers={"accept-encoding": "br"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-encoding"] == "br"
    assert '<script type="module" src="/web/app.js">' in page.text
    script = httpx.get(f"{mesh.http}/web/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    # A revisit costs a 304 while the file is unchanged.
    again = httpx.get(f"{mesh.http}/web/app.js", headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert httpx.head(f"{mesh.http}/web/style.css").status_code == 200
    assert httpx.post(f"{mesh.http}/web/app.js").status_code == 404


def test_a_browser_session_lives_in_cookies_and_writes_need_the_csrf_token(mesh: Mesh) -> None:
    email = _customer(mesh)
    login = httpx.post(
        f"{mesh.http}/v1/auth/login",
        headers={"x-groundwork-session": "cookie"},
        json={"email": email, "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    # No token a script could read: they are in httpOnly cookies.
    assert login.json()["access_token"] == "" and login.json()["refresh_token"] == ""
    set_cookies = {c.split("=", 1)[0]: c for c in login.headers.get_list("set-cookie")}
    assert set(set_cookies) == {"gw_access", "gw_refresh", "gw_csrf"}
    for name in ("gw_access", "gw_refresh"):
        assert "HttpOnly" in set_cookies[name] and "SameSite=Strict" in set_cookies[name]
    assert "HttpOnly" not in set_cookies["gw_csrf"] and "Secure" in set_cookies["gw_csrf"]
    assert "Path=/v1/auth/" in set_cookies["gw_refresh"]
    jar = {name: value.split(";")[0].split("=", 1)[1] for name, value in set_cookies.items()}
    session = f"gw_access={jar['gw_access']}; gw_csrf={jar['gw_csrf']}"
    me = httpx.get(f"{mesh.http}/v1/me", headers={"cookie": session})
    assert me.status_code == 200, me.text
    event_id = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 1}).json()["events"][0][
        "event_id"
    ]
    hold = {"event_id": event_id, "seat_ids": ["nope"], "idempotency_key": f"h-{uuid.uuid4()}"}
    # A write with the cookie but without the CSRF token: refused at the edge.
    for csrf in ({}, {"x-groundwork-csrf": "forged"}):
        refused = httpx.post(
            f"{mesh.http}/v1/holds", headers={"cookie": session, **csrf}, json=hold
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "csrf"
    # With it, the write reaches booking (which refuses the made-up seat: 400, not 403).
    allowed = httpx.post(
        f"{mesh.http}/v1/holds",
        headers={"cookie": session, "x-groundwork-csrf": jar["gw_csrf"]},
        json=hold,
    )
    assert allowed.status_code == 400, allowed.text
    # The refresh cookie renews the pair; logging out clears all three.
    refresh_session = {
        "cookie": f"gw_refresh={jar['gw_refresh']}; gw_csrf={jar['gw_csrf']}",
        "x-groundwork-csrf": jar["gw_csrf"],
        "x-groundwork-session": "cookie",
    }
    renewed = httpx.post(f"{mesh.http}/v1/auth/refresh", headers=refresh_session, json={})
    assert renewed.status_code == 200, renewed.text
    assert {c.split("=", 1)[0] for c in renewed.headers.get_list("set-cookie")} == set(jar)
    new_refresh = next(
        c.split(";")[0].split("=", 1)[1]
        for c in renewed.headers.get_list("set-cookie")
        if c.startswith("gw_refresh=")
    )
    refresh_session["cookie"] = f"gw_refresh={new_refresh}; gw_csrf={jar['gw_csrf']}"
    out = httpx.post(f"{mesh.http}/v1/auth/logout", headers=refresh_session, json={})
    assert out.status_code == 200, out.text
    assert all("Max-Age=0" in c for c in out.headers.get_list("set-cookie"))
    again = httpx.post(f"{mesh.http}/v1/auth/refresh", headers=refresh_session, json={})
    assert again.status_code == 401, again.text


def test_browse_search_and_page_through_events(mesh: Mesh, browsers: Callable[[], Browser]) -> None:
    browser = browsers()
    browser.open()
    first = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 10}).json()

    def names() -> list[str]:
        return [e.text for e in browser.all("#events a.event-link")]

    expected = [e["name"] for e in first["events"]]
    browser.until(lambda: names() == expected, "the first page of events")
    browser.screenshot("events")
    if first["next_page_token"]:
        second = httpx.get(
            f"{mesh.http}/v1/events",
            params={"page_size": 10, "page_token": first["next_page_token"]},
        ).json()
        browser.find("#next-page").click()
        browser.until(lambda: names() == [e["name"] for e in second["events"]], "page two")
        browser.find("#previous-page").click()
        browser.until(lambda: names() == expected, "page one again")
    # Search by city: only that city's events.
    city = first["events"][0]["venue"]["city"]
    in_city = httpx.get(f"{mesh.http}/v1/events", params={"page_size": 10, "city": city}).json()
    box = browser.find("#search input[name=city]")
    box.clear()
    box.send_keys(city)
    browser.find("#search button").click()
    browser.until(
        lambda: names() == [e["name"] for e in in_city["events"]], f"the events in {city}"
    )
    browser.find("#events a.event-link").click()
    browser.until(lambda: browser.text("#live") == "live", "the event page, live")
    assert browser.find("h1").text == in_city["events"][0]["name"]
    browser.until(
        lambda: browser.find("#seatmap").get_attribute("aria-busy") == "false", "its seat map"
    )
    browser.screenshot("event")


def test_one_browser_buys_and_the_other_sees_the_seat_sold_without_reloading(
    mesh: Mesh, admin: str, browsers: Callable[[], Browser], traces: Receiver
) -> None:
    event_id = edge_flows.new_event(mesh.http, admin, name="Two Browsers")
    seat = edge_flows.available_seat(mesh.http, event_id)
    buyer, watcher = browsers(), browsers()
    buyer.log_in(_customer(mesh), PASSWORD)
    watcher.open()
    for browser in (buyer, watcher):
        _event_page(browser, event_id)
    assert watcher.seat_state(seat) == "available"
    watcher.driver.execute_script("window.sameDocument = true")

    buyer.find(f'button[data-seat="{seat}"]').click()
    buyer.find("#hold").click()
    buyer.shown("#hold-panel")
    watcher.until(lambda: watcher.seat_state(seat) == "held", "the seat turning held")
    assert "mine" in (buyer.find(f'button[data-seat="{seat}"]').get_attribute("class") or "")
    buyer.until(
        lambda: (
            re.fullmatch(r"\d+:[0-5]\d", timer := buyer.text("#hold-timer")) and timer != "0:00"
        ),
        "the countdown",
    )
    buyer.screenshot("hold")
    buyer.find("#order").click()
    buyer.shown("#pay-panel")
    buyer.find("#pay").click()  # the first card approves
    buyer.until(lambda: "Paid" in buyer.text("#pay-result.ok"), "the payment's confirmation")
    watcher.until(lambda: watcher.seat_state(seat) == "sold", "the seat turning sold")
    assert watcher.driver.execute_script("return window.sameDocument") is True
    watcher.screenshot("seat-sold-live")

    # The last request's trace id, as the panel shows it, is a trace the mesh recorded.
    trace_id = buyer.text("#trace-id")
    assert len(trace_id) == 32, trace_id
    eventually(lambda: traces.store.spans(trace_id) or False, timeout=30)


def test_a_declined_card_and_a_timeout_say_so_and_another_card_pays(
    mesh: Mesh, admin: str, browsers: Callable[[], Browser]
) -> None:
    event_id = edge_flows.new_event(mesh.http, admin, name="Declined")
    seat = edge_flows.available_seat(mesh.http, event_id)
    browser = browsers()
    browser.log_in(_customer(mesh), PASSWORD)
    _event_page(browser, event_id)
    message = _buy(browser, seat, "tok_decline")
    assert "declined" in message and "try another card" in message, message
    assert browser.find("#pay-result").get_attribute("class") == "error"
    browser.screenshot("card-declined")
    # A card that never answers: the outcome is unknown, and the page says so (the
    # edge's 503 or 504 for it is the one error this console may show).
    browser.expected.append(re.compile(r":pay - .* status of 50[34] "))
    Select(browser.find("#card")).select_by_value("tok_timeout")
    browser.find("#pay").click()
    browser.until(lambda: "outcome is unknown" in browser.text("#pay-result.error"), "a timeout")
    Select(browser.find("#card")).select_by_value("tok_approve")
    browser.find("#pay").click()
    browser.until(lambda: "Paid" in browser.text("#pay-result"), "payment with another card")


def test_the_waiting_room_admits_a_queued_browser(
    mesh: Mesh, admin: str, browsers: Callable[[], Browser]
) -> None:
    event_id = edge_flows.new_event(mesh.http, admin, name="Queued")
    edge_flows.create_room(mesh.http, admin, event_id, paused=True, new_users_per_minute=600)
    seat = edge_flows.available_seat(mesh.http, event_id)
    skipper = mesh.user_token()

    def refused() -> None:
        reply = httpx.post(
            f"{mesh.http}/v1/holds",
            headers={"authorization": f"Bearer {skipper}"},
            json={"event_id": event_id, "seat_ids": [seat], "idempotency_key": str(uuid.uuid4())},
        )
        assert reply.status_code == 403, reply.text

    eventually(refused, timeout=10)  # the edge knows of the room
    browser = browsers()
    browser.log_in(_customer(mesh), PASSWORD)
    _event_page(browser, event_id)
    browser.find(f'button[data-seat="{seat}"]').click()
    browser.find("#hold").click()
    browser.until(
        lambda: "You are number 1 of 1" in browser.text("#queue-position"), "a place in line"
    )
    browser.screenshot("waiting-room")
    resumed = httpx.patch(
        f"{mesh.http}/v1/rooms/{event_id}",
        headers={"authorization": f"Bearer {admin}"},
        json={"paused": False},
    )
    assert resumed.status_code == 200, resumed.text
    browser.shown("#hold-panel", timeout=60)
    assert browser.seat_state(seat) == "held"


def test_a_ticket_shows_a_qr_code_and_its_signature_verifies(
    mesh: Mesh, admin: str, browsers: Callable[[], Browser]
) -> None:
    event_id = edge_flows.new_event(mesh.http, admin, name="Tickets")
    seat = edge_flows.available_seat(mesh.http, event_id)
    email = _customer(mesh)
    browser = browsers()
    browser.log_in(email, PASSWORD)
    _event_page(browser, event_id)
    assert "Paid" in _buy(browser, seat, "tok_approve")
    token = edge_flows.login(mesh.http, email, PASSWORD)["access_token"]

    def issued() -> dict[str, Any]:
        tickets = httpx.get(
            f"{mesh.http}/v1/tickets", headers={"authorization": f"Bearer {token}"}
        ).json()["tickets"]
        assert tickets, "no ticket yet"
        return dict(tickets[0])

    ticket = eventually(issued, timeout=30)
    browser.find("#to-tickets").click()
    item = browser.shown(f'li.ticket[data-ticket="{ticket["ticket_id"]}"]')
    browser.until(lambda: browser.text("li.ticket .verify") == "signature verified", "the check")
    browser.screenshot("ticket")
    assert seat in item.text
    assert browser.read_qr(browser.find("canvas.qr")) == ticket["token"]
    # The order is listed as paid.
    assert browser.text("#orders td.status") == "paid"


def test_sign_up_then_an_expired_access_cookie_is_refreshed_and_log_out_ends_it(
    mesh: Mesh, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    browser.open("#/login")
    form = browser.shown("form#signup")
    form.find_element(By.NAME, "email").send_keys(f"web-{uuid.uuid4().hex[:10]}@example.com")
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button").click()
    browser.shown("#logout")  # signed up and logged in
    # As if the access token had expired: the page refreshes it from the refresh
    # cookie (which a script cannot see) and goes on.
    browser.driver.delete_cookie("gw_access")
    browser.go("#/account")
    browser.shown("#orders")
    assert "gw_access" in {c["name"] for c in browser.driver.get_cookies()}
    browser.find("#logout").click()
    browser.shown("#nav-login")
    assert {c["name"] for c in browser.driver.get_cookies()} == set()


def test_the_page_runs_under_its_content_security_policy(
    mesh: Mesh, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    browser.open()
    browser.shown("#events")
    # The page works (above) and the policy is enforced: script injected inline,
    # as an XSS would, does not run, and the browser reports the violation.
    ran = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        document.addEventListener("securitypolicyviolation",
          (event) => done({blocked: event.violatedDirective, ran: window.injected === true}));
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.append(script);
        """
    )
    assert ran == {"blocked": "script-src-elem", "ran": False}
    # That refusal is the one error this browser's console may hold.
    refused = browser.errors()
    assert refused and all("Content Security Policy" in e["message"] for e in refused), refused
    browser.console.clear()


def test_the_page_keeps_up_with_a_small_flash_sale(
    mesh: Mesh, admin: str, browsers: Callable[[], Browser], tmp_path: Path
) -> None:
    """A browser watches an event's seat map while Locust runs a small sale on it
    (about 100 customers through the waiting room): its console stays clean and,
    the sale over, its map says what the API says, seat for seat."""
    event_id = edge_flows.new_event(mesh.http, admin, name="Watched Flash Sale")
    browser = browsers()
    browser.open()
    _event_page(browser, event_id)
    done: dict[str, subprocess.CompletedProcess[str]] = {}

    def sale() -> None:
        done["load"] = mesh.cli(
            *("load", "flash-sale", "--event-id", event_id, "--out", str(tmp_path)),
            *("--flash-users", "100", "--flash-ramp", "5", "--flash-hold", "10"),
            *("--customers-file", str(tmp_path / "customers.json")),
            timeout=240,
            check=False,
        )

    runner = threading.Thread(target=sale)
    runner.start()
    runner.join(300)
    load = done["load"]
    assert load.returncode == 0, load.stdout + load.stderr
    sold = json.loads((tmp_path / "result.json").read_text())["sale"]["seats_sold"]
    assert sold >= 10

    def painted(state: str) -> int:
        return int(
            browser.driver.execute_script(
                "return document.querySelectorAll(arguments[0]).length",
                f"#seatmap .seat[data-state={state}]",
            )
        )

    def agrees() -> bool:
        figures = httpx.get(f"{mesh.http}/v1/events/{event_id}/availability").json()
        return (painted("sold"), painted("held")) == (figures["sold"], figures["held"])

    browser.until(agrees, "the live map agreeing with the API")
    assert painted("sold") == sold
    browser.screenshot("after-flash-sale")
