"""Locust users of the ticketing system, all through the edge.

Imported only inside Locust's own processes (Locust monkey-patches the standard
library with gevent on import); the runner starts those as subprocesses.

- BrowserUser: list events, open one, read its seat map (the cached read path).
- BuyerUser: log in, hold a seat, order, pay, wait for the ticket.
- GrpcBrowserUser: the same reads as BrowserUser over native gRPC through the edge.
- FlashBuyer: a customer of a flash sale: arrives logged in (tokens prepared
  before the run), waits in the event's waiting room until admitted, reads the
  layout and the availability, races for a seat, buys it (the flash-sale shape).

Losing a race for a seat (hold answered 400: taken) or finding an event sold out
are outcomes of a sale, not failures: they are counted as their own entries
("hold lost race", "sold out") so failures mean only that the system misbehaved.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
import websocket
from gevent.event import AsyncResult
from locust import FastHttpUser, User, between, events, task
from locust.env import Environment
from locust.exception import StopUser

from groundwork.catalog.v1 import catalog_pb2 as catalog_pb
from groundwork.catalog.v1 import catalog_pb2_grpc
from groundwork_loadtest.seats import available, seat_order

grpc_gevent.init_gevent()  # gRPC's own threads cooperate with gevent's loop

PASSWORD = "load-test password 1"
AVAILABLE = "SEAT_STATUS_AVAILABLE"
PAID = "ORDER_STATUS_PAID"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("groundwork")
    group.add_argument("--event-id", default="", help="Buy (and browse) only this event")
    group.add_argument(
        "--ticket-wait",
        choices=["poll", "websocket"],
        default="poll",
        help="Wait for a ticket by polling /v1/tickets, or watch the order over the WebSocket",
    )
    group.add_argument(
        "--accounts", type=int, default=200, help="Buyer accounts per Locust process"
    )
    group.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="Browsers' and buyers' most seconds between tasks (0: none, to saturate)",
    )
    group.add_argument("--flash-users", type=int, default=2000, help="Flash sale: peak users")
    group.add_argument("--flash-ramp", type=float, default=10, help="Flash sale: seconds to peak")
    group.add_argument("--flash-hold", type=float, default=20, help="Flash sale: seconds at peak")
    group.add_argument(
        "--tokens-file", default="", help="Flash sale: customers' access tokens (a JSON list)"
    )
    group.add_argument(
        "--waiting-room",
        action="store_true",
        help="Flash sale: the event has a waiting room; join it and wait to be admitted",
    )


def _options_of(environment: Environment) -> Any:
    return environment.parsed_options


def thinking(user: User) -> float:
    """A person's pause between actions: up to --think seconds, at least a quarter."""
    most = float(_options_of(user.environment).think)
    return random.uniform(most / 4, most) if most > 0 else 0.0


class Accounts:
    """Buyer accounts shared by the users of one Locust process: sign-up and login
    hash passwords (argon2id), so a few hundred accounts serve thousands of users."""

    def __init__(self) -> None:
        self._slots: dict[int, AsyncResult] = {}
        self._next = itertools.count()
        self._prefix = uuid.uuid4().hex[:12]

    def token(self, user: FastHttpUser, size: int) -> str:
        slot = next(self._next) % max(size, 1)
        if slot in self._slots:
            try:
                return str(self._slots[slot].get())
            except RuntimeError as error:
                raise StopUser() from error
        result = self._slots[slot] = AsyncResult()
        email = f"load-{self._prefix}-{slot}@example.com"
        body = {"email": email, "password": PASSWORD}
        user.client.post("/v1/auth/signup", json=body, name="signup")
        with user.client.post(
            "/v1/auth/login", json=body, name="login", catch_response=True
        ) as reply:
            if reply.status_code != 200:
                del self._slots[slot]
                result.set_exception(RuntimeError(f"login failed: {reply.status_code}"))
                reply.failure(f"login {reply.status_code}: {reply.text[:200]}")
                raise StopUser()  # this user cannot buy
            token = reply.json()["access_token"]
        result.set(token)
        return str(token)


ACCOUNTS = Accounts()


class Tokens:
    """Prepared customers of one Locust process: each new user is the next one
    (with --processes, each process takes its own share)."""

    def __init__(self) -> None:
        self._tokens: list[str] | None = None
        self._next = itertools.count()

    def next(self, environment: Environment) -> str | None:
        path = _options_of(environment).tokens_file
        if not path:
            return None
        if self._tokens is None:
            every = json.loads(open(path).read())  # noqa: SIM115 (gevent-patched, small)
            runner = environment.runner
            index = int(getattr(runner, "worker_index", 0) or 0)
            workers = max(1, int(getattr(_options_of(environment), "processes", 0) or 1))
            self._tokens = every[index::workers]
        i = next(self._next)
        if i >= len(self._tokens):
            raise StopUser()  # every prepared customer has arrived
        return self._tokens[i]


TOKENS = Tokens()
SALE_STARTED = time.monotonic()


@events.test_start.add_listener
def _sale_starts(environment: Environment, **kwargs: Any) -> None:
    global SALE_STARTED
    SALE_STARTED = time.monotonic()


class Catalog:
    """Events and seat maps as a buyer's client sees them."""

    def __init__(self, user: FastHttpUser) -> None:
        self.user = user

    def event_ids(self) -> list[str]:
        chosen = _options_of(self.user.environment).event_id
        if chosen:
            return [chosen]
        reply = self.user.client.get("/v1/events?page_size=50", name="/v1/events")
        return [e["event_id"] for e in reply.json()["events"]]

    def seat_map(self, event_id: str) -> dict[str, Any]:
        reply = self.user.client.get(f"/v1/events/{event_id}/seats", name="/v1/events/:id/seats")
        result: dict[str, Any] = reply.json()
        return result


class BrowserUser(FastHttpUser):
    """Reads only: the path the catalog's cache serves. Learns the event ids once, as
    GrpcBrowserUser does, so both do the same reads."""

    wait_time = thinking

    def on_start(self) -> None:
        self.events = Catalog(self).event_ids()

    @task(3)
    def list_events(self) -> None:
        self.client.get("/v1/events?page_size=20", name="/v1/events")

    @task(2)
    def open_event(self) -> None:
        if self.events:
            self.client.get(f"/v1/events/{random.choice(self.events)}", name="/v1/events/:id")

    @task(2)
    def seat_map(self) -> None:
        if self.events:
            Catalog(self).seat_map(random.choice(self.events))


class Purchaser(FastHttpUser):
    """What every buyer does once it has chosen a seat: hold → order → pay → ticket.
    Abstract: a subclass says how seats are chosen (Locust would otherwise merge a
    base class's tasks into every subclass)."""

    abstract = True
    auth: dict[str, str]

    hold_headers: dict[str, str] | None = None  # the auth, plus an admission token

    def purchase(self, event_id: str, seat_id: str) -> bool:
        """Hold, order, pay and wait for the ticket; False when the seat was lost or
        a step failed (the failure is recorded on that step)."""
        with self.client.post(
            "/v1/holds",
            json={"event_id": event_id, "seat_ids": [seat_id], "idempotency_key": _key("h")},
            headers=self.hold_headers or self.auth,
            name="hold",
            catch_response=True,
        ) as held:
            if held.status_code == 400:
                held.success()  # taken by another buyer since the seat map was read
                _outcome(self, "hold lost race")
                return False
        if held.status_code != 200:
            return False
        order = self.client.post(
            "/v1/orders",
            json={"hold_id": held.json()["hold_id"], "idempotency_key": _key("o")},
            headers=self.auth,
            name="order",
        )
        if order.status_code != 200:
            return False
        order_id = order.json()["order_id"]
        watch = _watch_order(self, order_id) if self._by_websocket() else None
        paid = self.client.post(
            f"/v1/orders/{order_id}:pay",
            json={"card_token": "tok_approve", "idempotency_key": _key("p")},
            headers=self.auth,
            name="pay",
        )
        if paid.status_code != 200:
            return False
        if watch is not None:
            watch.get()
        return self.wait_for_ticket(order_id)

    def _by_websocket(self) -> bool:
        return bool(_options_of(self.environment).ticket_wait == "websocket")

    def wait_for_ticket(self, order_id: str, timeout: float = 30) -> bool:
        """The ticket is issued by ticketing from the bus: poll until it appears,
        from half a second after paying (it is never there at once), backing off
        to every 2 s (polling every 0.5 s, 9,623 ticket reads were a sixth of a
        5,000-customer sale's authenticated requests)."""
        started, pause = time.monotonic(), 0.5
        while time.monotonic() - started < timeout:
            gevent.sleep(pause)
            pause = min(2.0, pause * 2)
            reply = self.client.get("/v1/tickets", headers=self.auth, name="/v1/tickets")
            if any(t["order_id"] == order_id for t in reply.json().get("tickets", [])):
                _outcome(self, "ticket issued", (time.monotonic() - started) * 1000)
                return True
        _failed(self, "ticket issued", f"no ticket for order {order_id} in {timeout:.0f}s")
        return False


class BuyerUser(Purchaser):
    """A whole purchase per iteration: hold → order → pay → ticket."""

    wait_time = thinking

    def on_start(self) -> None:
        token = ACCOUNTS.token(self, _options_of(self.environment).accounts)
        self.auth = {"authorization": f"Bearer {token}"}

    @task
    def buy(self) -> None:
        catalog = Catalog(self)
        event_id = random.choice(catalog.event_ids())
        seats = [
            s["seat_id"] for s in catalog.seat_map(event_id)["seats"] if s["status"] == AVAILABLE
        ]
        if not seats:
            _outcome(self, "sold out")
            return
        self.purchase(event_id, random.choice(seats))


def _watch_order(user: Purchaser, order_id: str) -> gevent.Greenlet:
    """Open /v1/live/orders before paying and wait for the order's `paid` update."""
    url = str(user.host).replace("http", "ws", 1) + "/v1/live/orders"
    started = time.monotonic()
    ws = websocket.create_connection(url, header=[f"authorization: {user.auth['authorization']}"])

    def watch() -> None:
        try:
            ws.settimeout(30)
            while True:
                update = json.loads(ws.recv())
                order = update.get("order", {})
                if order.get("order_id") == order_id and order.get("status") == PAID:
                    _outcome(user, "order paid (websocket)", (time.monotonic() - started) * 1000)
                    return
        except Exception as error:  # a broken or silent socket fails this entry
            _failed(user, "order paid (websocket)", repr(error))
        finally:
            ws.close()

    return gevent.spawn(watch)


class GrpcBrowserUser(User):
    """BrowserUser's reads as native gRPC calls to the edge (h2c), for REST vs gRPC."""

    wait_time = thinking

    def on_start(self) -> None:
        target = str(self.host).split("://", 1)[-1].rstrip("/")
        self.channel = grpc.insecure_channel(target)
        self.stub = catalog_pb2_grpc.CatalogServiceStub(self.channel)
        chosen = _options_of(self.environment).event_id
        self.events = [chosen] if chosen else []

    def on_stop(self) -> None:
        self.channel.close()

    def _call(self, name: str, method: Any, request: Any) -> Any:
        started = time.perf_counter()
        reply, error = None, None
        try:
            reply = method(request, timeout=10)
        except grpc.RpcError as failure:
            error = failure
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=reply.ByteSize() if reply is not None else 0,
            exception=error,
            context={},
        )
        return reply

    def _event_ids(self) -> list[str]:
        if not self.events:
            listed = self._call(
                "ListEvents", self.stub.ListEvents, catalog_pb.ListEventsRequest(page_size=50)
            )
            self.events = [e.event_id for e in listed.events] if listed else []
        return self.events

    @task(3)
    def list_events(self) -> None:
        self._call("ListEvents", self.stub.ListEvents, catalog_pb.ListEventsRequest(page_size=20))

    @task(2)
    def open_event(self) -> None:
        if ids := self._event_ids():
            request = catalog_pb.GetEventRequest(event_id=random.choice(ids))
            self._call("GetEvent", self.stub.GetEvent, request)

    @task(2)
    def seat_map(self) -> None:
        if ids := self._event_ids():
            request = catalog_pb.GetSeatMapRequest(event_id=random.choice(ids))
            self._call("GetSeatMap", self.stub.GetSeatMap, request)


# event id -> its seat ids in layout order (the index of each seat's two bits)
LAYOUTS: dict[str, list[str]] = {}


class FlashBuyer(Purchaser):
    """One customer of a flash sale. Arrives logged in; with --waiting-room, joins
    the event's queue and waits (polling as the answer says) until admitted;
    reads the layout (micro-cached at the edge, the same for everyone) and the
    availability overlay, then races for a seat until one is won (then buys it
    and leaves) or none is left. Aims are skewed to the front of the map, as real
    buyers' are, so the race is real: the aim among the seats left is
    exponential with a mean of AIM seats, doubled by each lost race (a buyer who
    lost a front seat settles for one further back). After a lost race the buyer
    reads the availability again: a seat map on screen is live (the WebSocket),
    and a read is at most the edge's micro-cache interval old. (Aiming at the
    first 30 seats of a map read once, re-read after three losses, lost 82% of
    holds, which measured the buyers' aim more than the system.)"""

    AIM = 30

    wait_time = between(0, 0.2)

    def on_start(self) -> None:
        token = TOKENS.next(self.environment)
        if token is None:
            token = ACCOUNTS.token(self, _options_of(self.environment).accounts)
        self.auth = {"authorization": f"Bearer {token}"}
        self.event_id = Catalog(self).event_ids()[0]
        self.hold_headers = dict(self.auth)
        if _options_of(self.environment).waiting_room:
            self.hold_headers["x-groundwork-admission"] = self.wait_in_queue()
        self.losses = 0
        self.seats = self.read_availability()

    def wait_in_queue(self) -> str:
        arrived = time.monotonic()
        path = f"/v1/events/{self.event_id}/queue"
        reply = self.client.post(path, json={}, headers=self.auth, name="queue join")
        while True:
            if reply.status_code != 200:
                raise StopUser()  # recorded as that request's failure
            ticket = reply.json()
            if ticket["status"] == "TICKET_STATUS_ADMITTED":
                _outcome(self, "time in queue", (time.monotonic() - arrived) * 1000)
                return str(ticket["admission_token"])
            gevent.sleep(max(1.0, float(ticket.get("poll_after_seconds") or 1)))
            reply = self.client.get(path, headers=self.auth, name="queue poll")

    def leave_queue(self) -> None:
        """Done: free the admitted place for the next in line, as a checkout page
        does, instead of holding it for the rest of the session (the room admits
        no one while total_active_users are inside)."""
        if self.hold_headers and "x-groundwork-admission" in self.hold_headers:
            path = f"/v1/events/{self.event_id}/queue:leave"
            self.client.post(path, json={}, headers=self.auth, name="queue leave")

    def _aim_mean(self) -> float:
        return float(self.AIM * 2 ** min(self.losses, 6))

    def read_availability(self) -> list[str]:
        base = f"/v1/events/{self.event_id}"
        if self.event_id not in LAYOUTS:
            layout = self.client.get(f"{base}/layout", name="/v1/events/:id/layout")
            LAYOUTS[self.event_id] = seat_order(layout.json())
        reply = self.client.get(f"{base}/availability", name="/v1/events/:id/availability")
        # Ten means: an exponential aim lands beyond that once in 22,000.
        return available(reply.json(), LAYOUTS[self.event_id], int(10 * self._aim_mean()))

    @task
    def buy(self) -> None:
        if not self.seats:
            _outcome(self, "sold out", (time.monotonic() - SALE_STARTED) * 1000)
            self.leave_queue()
            raise StopUser()
        aim = min(int(random.expovariate(1 / self._aim_mean())), len(self.seats) - 1)
        if self.purchase(self.event_id, self.seats.pop(aim)):
            self.leave_queue()
            raise StopUser()  # one ticket per customer
        self.losses += 1
        self.seats = self.read_availability()


def _key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def _outcome(user: User, name: str, milliseconds: float = 0) -> None:
    user.environment.events.request.fire(
        request_type="outcome",
        name=name,
        response_time=milliseconds,
        response_length=0,
        exception=None,
        context={},
    )


def _failed(user: User, name: str, why: str) -> None:
    user.environment.events.request.fire(
        request_type="outcome",
        name=name,
        response_time=0,
        response_length=0,
        exception=RuntimeError(why),
        context={},
    )
