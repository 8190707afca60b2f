// The sale in a browser: events, the live seat map, the waiting room, checkout
// and tickets, all through the same edge as the API. Plain ES modules, no build.

import { api, ApiError, lastRequest, login, logout, newKey, onRequest, signUp, signedIn } from "./api.js";
import { SeatMap } from "./seatmap.js";
import { drawQr, verifyTicket } from "./tickets.js";

const main = document.getElementById("main");
let config = { trace_ui: "" };
let cleanup = () => {};

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

function money(cents, currency) {
  return `${(Number(cents) / 100).toFixed(2)} ${currency}`;
}

function when(timestamp) {
  return new Date(timestamp).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function notice(text, kind = "error") {
  const area = document.getElementById("notice");
  area.className = kind;
  area.textContent = text;
}

function explain(error) {
  if (error instanceof ApiError) return error.message;
  return `${error.message || error}`;
}

// --- the "what happened" panel ------------------------------------------------

function showLastRequest(request) {
  const panel = document.getElementById("last-request");
  const trace = request.traceId
    ? config.trace_ui
      ? h("a", { href: `${config.trace_ui}/trace/${request.traceId}`, target: "_blank", rel: "noopener", id: "trace-link" }, request.traceId)
      : h("code", { id: "trace-id" }, request.traceId)
    : "none (tracing is off)";
  panel.replaceChildren(
    h("strong", {}, "Last request "),
    h("code", {}, `${request.method} ${request.path}`),
    ` → ${request.status} in ${request.millis} ms · ${request.encoding}${request.cache ? ` · ${request.cache}` : ""} · trace `,
    trace,
  );
}

// --- events ---------------------------------------------------------------------

async function eventsView(params) {
  const city = params.get("city") || "";
  const from = params.get("from") || "";
  const tokens = (params.get("pages") || "").split(",").filter(Boolean);
  const query = new URLSearchParams({ page_size: "10" });
  if (city) query.set("city", city);
  if (from) query.set("starts_after", `${from}T00:00:00Z`);
  if (tokens.length) query.set("page_token", tokens[tokens.length - 1]);
  const form = h(
    "form",
    { id: "search", onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const next = new URLSearchParams();
      for (const key of ["city", "from"]) if (data.get(key)) next.set(key, data.get(key));
      location.hash = `#/?${next}`;
    } },
    h("label", {}, "City ", h("input", { name: "city", value: city, placeholder: "any" })),
    h("label", {}, "From ", h("input", { name: "from", type: "date", value: from })),
    h("button", { type: "submit" }, "Search"),
  );
  main.replaceChildren(h("h1", {}, "Events"), form, h("p", {}, "Loading…"));
  const page = await api.get(`/v1/events?${query}`);
  const pageLink = (list) => {
    const next = new URLSearchParams();
    if (city) next.set("city", city);
    if (from) next.set("from", from);
    if (list.length) next.set("pages", list.join(","));
    return `#/?${next}`;
  };
  const items = page.events.map((event) =>
    h(
      "li",
      { class: "event" },
      h("a", { href: `#/events/${event.event_id}`, class: "event-link" }, event.name),
      h("span", {}, ` · ${event.venue.name}, ${event.venue.city} · ${when(event.starts_at)}`),
      h("span", { class: "muted" }, ` · from ${money(event.min_price_cents, event.currency)} · ${event.seats_available} seats left`),
    ),
  );
  main.replaceChildren(
    h("h1", {}, "Events"),
    form,
    items.length ? h("ul", { id: "events" }, items) : h("p", { id: "events-empty" }, "No events match."),
    h(
      "nav",
      { class: "pager" },
      tokens.length ? h("a", { href: pageLink(tokens.slice(0, -1)), id: "previous-page" }, "← Previous") : null,
      page.next_page_token ? h("a", { href: pageLink([...tokens, page.next_page_token]), id: "next-page" }, "Next →") : null,
    ),
  );
}

// --- an event: seat map and checkout ------------------------------------------

async function eventView(eventId) {
  const event = await api.get(`/v1/events/${encodeURIComponent(eventId)}`);
  const status = h("span", { id: "live", class: "offline" }, "connecting…");
  const selection = h("p", { id: "selection" }, "Choose up to 10 seats.");
  const checkout = h("div", { id: "checkout" });
  // One hold at a time: a second click while the first is on its way does nothing.
  const holdButton = h("button", { id: "hold", disabled: true, onclick: () => {
    holdButton.disabled = true;
    checkoutFlow(eventId, map, checkout).finally(() => {
      holdButton.disabled = map.selected.size === 0;
    });
  } }, "Hold seats");
  const seats = h("div", { id: "seatmap", "aria-busy": "true" });
  const map = new SeatMap(seats, eventId, {
    onSelect: (ids) => {
      selection.textContent = ids.length ? `Selected: ${ids.join(", ")}` : "Choose up to 10 seats.";
      holdButton.disabled = ids.length === 0;
    },
    onLive: (live) => {
      status.className = live ? "online" : "offline";
      status.textContent = live ? "live" : "reconnecting…";
    },
  });
  main.replaceChildren(
    h("h1", {}, event.name),
    h("p", {}, `${event.venue.name}, ${event.venue.city} · ${when(event.starts_at)} · `, status),
    h("div", { class: "legend" }, ["available", "held", "sold", "mine"].map((state) => h("span", { class: `seat ${state}` }, state))),
    seats,
    h("div", { class: "bar" }, selection, holdButton),
    checkout,
  );
  cleanup = () => map.close();
  await map.load();
  seats.setAttribute("aria-busy", "false");
}

async function checkoutFlow(eventId, map, panel) {
  if (!signedIn()) {
    location.hash = `#/login?back=${encodeURIComponent(location.hash)}`;
    return;
  }
  const seatIds = [...map.selected];
  const body = { event_id: eventId, seat_ids: seatIds, idempotency_key: newKey("hold") };
  try {
    let hold;
    try {
      hold = await api.post("/v1/holds", body);
    } catch (error) {
      if (!(error instanceof ApiError) || error.reason !== "admission_required") throw error;
      const admission = await waitingRoom(eventId, panel);
      hold = await api.post("/v1/holds", body, { headers: { "x-groundwork-admission": admission } });
    }
    map.markMine(hold.seat_ids);
    holdPanel(hold, map, panel);
  } catch (error) {
    notice(explain(error));
  }
}

// Join the event's queue and wait for admission: the admission token is kept in
// memory only, for the hold that follows.
async function waitingRoom(eventId, panel) {
  const path = `/v1/events/${encodeURIComponent(eventId)}/queue`;
  const position = h("p", { id: "queue-position" }, "Joining the queue…");
  step(panel, h("section", { id: "waiting-room" }, h("h2", {}, "Waiting room"), position));
  let ticket = await api.post(path, {});
  while (ticket.status !== "TICKET_STATUS_ADMITTED") {
    if (ticket.status === "TICKET_STATUS_PRE_QUEUE") {
      position.textContent = `The sale opens ${when(ticket.opens_at)}: places are drawn at random then.`;
    } else {
      const wait = Math.max(0, Math.round(ticket.estimated_wait_seconds));
      const place = Number(ticket.position) ? `You are number ${ticket.position} of ${ticket.queue_length}` : "You are in the queue";
      position.textContent = `${place}. Estimated wait: ${wait} s.${ticket.paused ? " The room is paused." : ""}`;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0.5, ticket.poll_after_seconds || 1) * 1000));
    ticket = await api.get(path);
  }
  position.textContent = "It is your turn: holding your seats…";
  return ticket.admission_token;
}

function countdown(node, expiresAt, onExpired) {
  const tick = () => {
    const left = Math.max(0, Math.round((new Date(expiresAt) - Date.now()) / 1000));
    node.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) {
      clearInterval(timer);
      onExpired();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}

// Each checkout step replaces the last, in view (the seat map above can be long).
function step(panel, section) {
  panel.replaceChildren(section);
  section.scrollIntoView({ block: "center" });
}

function holdPanel(hold, map, panel) {
  const timer = h("strong", { id: "hold-timer" });
  const stop = countdown(timer, hold.expires_at, () => notice("Your hold expired: the seats went back on sale."));
  const previous = cleanup;
  cleanup = () => {
    stop();
    previous();
  };
  const order = async () => {
    try {
      const created = await api.post("/v1/orders", { hold_id: hold.hold_id, idempotency_key: newKey("order") });
      stop();
      payPanel(created, panel);
    } catch (error) {
      notice(explain(error));
    }
  };
  const release = async () => {
    try {
      await api.post(`/v1/holds/${hold.hold_id}:release`, { idempotency_key: newKey("release") });
      stop();
      panel.replaceChildren(h("p", {}, "Released."));
    } catch (error) {
      notice(explain(error));
    }
  };
  step(
    panel,
    h(
      "section",
      { id: "hold-panel" },
      h("h2", {}, "Your hold"),
      h("p", {}, `${hold.seat_ids.join(", ")} ${hold.seat_ids.length === 1 ? "is" : "are"} yours for `, timer, "."),
      h("button", { id: "order", onclick: order }, "Order"),
      " ",
      h("button", { id: "release", class: "secondary", onclick: release }, "Release"),
    ),
  );
}

const CARDS = [
  ["tok_approve", "Test card: approves"],
  ["tok_decline", "Test card: declines"],
  ["tok_timeout", "Test card: never answers"],
];

function payPanel(order, panel) {
  const card = h("select", { id: "card" }, CARDS.map(([value, label]) => h("option", { value }, label)));
  const result = h("p", { id: "pay-result", role: "status" });
  const button = h("button", { id: "pay" }, "Pay");
  // One idempotency key per attempt with a card: an attempt whose outcome is
  // unknown (a timeout) is retried with the same key, so it is charged once at most.
  let attempt = { card: "", key: "" };
  button.addEventListener("click", async () => {
    if (attempt.card !== card.value) attempt = { card: card.value, key: newKey("pay") };
    button.disabled = true;
    result.className = "";
    result.textContent = "Paying…";
    try {
      await api.post(`/v1/orders/${order.order_id}:pay`, { card_token: card.value, idempotency_key: attempt.key });
      result.className = "ok";
      result.replaceChildren("Paid: your tickets are on their way. ", h("a", { href: "#/account", id: "to-tickets" }, "My tickets"));
      button.remove();
    } catch (error) {
      result.className = "error";
      if (error instanceof ApiError && error.status >= 500) {
        result.textContent = `${explain(error)}: the payment's outcome is unknown. Paying again with this card is safe: it is charged once at most.`;
      } else {
        attempt = { card: "", key: "" };
        result.textContent = `${explain(error)}. Nothing was charged: try another card.`;
      }
      button.disabled = false;
    }
  });
  step(
    panel,
    h(
      "section",
      { id: "pay-panel" },
      h("h2", {}, "Pay"),
      h("p", {}, `Order ${order.order_id}: ${order.seat_ids.join(", ")} · ${money(order.amount_cents, order.currency)}`),
      card,
      " ",
      button,
      result,
    ),
  );
}

// --- sign in ------------------------------------------------------------------

function loginView(params) {
  const back = params.get("back") || "#/";
  const form = (id, title, action) => {
    const node = h(
      "form",
      { id, onsubmit: async (event) => {
        event.preventDefault();
        const data = new FormData(node);
        try {
          await action(String(data.get("email")), String(data.get("password")));
          renderNav();
          location.hash = back;
        } catch (error) {
          notice(explain(error));
        }
      } },
      h("h2", {}, title),
      h("label", {}, "Email ", h("input", { name: "email", type: "email", required: true, autocomplete: "username" })),
      h("label", {}, "Password ", h("input", { name: "password", type: "password", required: true, minlength: "12", autocomplete: id === "signup" ? "new-password" : "current-password" })),
      h("button", { type: "submit" }, title),
    );
    return node;
  };
  main.replaceChildren(h("h1", {}, "Your account"), h("div", { class: "columns" }, form("login", "Log in", login), form("signup", "Sign up", signUp)));
}

// --- my orders and tickets ----------------------------------------------------

async function accountView() {
  if (!signedIn()) {
    location.hash = "#/login?back=%23%2Faccount";
    return;
  }
  const [orders, tickets] = await Promise.all([api.get("/v1/orders"), api.get("/v1/tickets")]);
  const ticketItems = tickets.tickets.map((ticket) => {
    const canvas = h("canvas", { class: "qr", "data-ticket": ticket.ticket_id });
    const check = h("span", { class: "verify" }, "verifying…");
    drawQr(canvas, ticket.token);
    verifyTicket(ticket).then(
      () => {
        check.className = "verify ok";
        check.textContent = "signature verified";
      },
      (error) => {
        check.className = "verify error";
        check.textContent = `not valid: ${error.message}`;
      },
    );
    return h("li", { class: "ticket", "data-ticket": ticket.ticket_id }, canvas, h("div", {}, h("strong", {}, ticket.seat_id), h("br"), `Order ${ticket.order_id}`, h("br"), check));
  });
  main.replaceChildren(
    h("h1", {}, "My tickets"),
    ticketItems.length ? h("ul", { id: "tickets" }, ticketItems) : h("p", { id: "no-tickets" }, "No tickets yet (a paid order's tickets arrive within seconds)."),
    h("h2", {}, "My orders"),
    h(
      "table",
      { id: "orders" },
      h("tr", {}, ["Order", "Seats", "Amount", "Status"].map((title) => h("th", {}, title))),
      orders.orders.map((order) =>
        h("tr", {}, h("td", {}, order.order_id), h("td", {}, order.seat_ids.join(", ")), h("td", {}, money(order.amount_cents, order.currency)), h("td", { class: "status" }, order.status.replace("ORDER_STATUS_", "").toLowerCase())),
      ),
    ),
  );
}

// --- shell ----------------------------------------------------------------------

function renderNav() {
  const nav = document.getElementById("nav");
  const session = signedIn()
    ? [h("a", { href: "#/account", id: "nav-account" }, "My tickets"), h("button", { id: "logout", class: "link", onclick: async () => {
        try {
          await logout();
        } finally {
          renderNav();
          location.hash = "#/";
        }
      } }, "Log out")]
    : [h("a", { href: "#/login", id: "nav-login" }, "Log in")];
  nav.replaceChildren(h("a", { href: "#/", class: "brand" }, "Groundwork tickets"), h("a", { href: "#/" }, "Events"), ...session);
}

async function route() {
  cleanup();
  cleanup = () => {};
  notice("", "");
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = (path || "/").split("/").filter(Boolean);
  try {
    if (parts[0] === "events" && parts[1]) await eventView(decodeURIComponent(parts[1]));
    else if (parts[0] === "login") loginView(params);
    else if (parts[0] === "account") await accountView();
    else await eventsView(params);
  } catch (error) {
    notice(explain(error));
  }
}

onRequest(showLastRequest);
window.addEventListener("hashchange", route);
fetch("/web/config.json")
  .then((reply) => (reply.ok ? reply.json() : config))
  .then((loaded) => {
    config = loaded;
    if (lastRequest) showLastRequest(lastRequest);
  })
  .catch(() => {});
renderNav();
route();
