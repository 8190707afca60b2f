// A seat map as the flash sale serves it: the layout (long-cacheable, versioned),
// the availability (two bits per seat, a few kilobytes for thousands of seats),
// and the WebSocket's changes applied on top from the availability's version on.

import { api } from "./api.js";

const STATES = ["available", "held", "sold"];
const LIVE_STATES = { SEAT_STATE_AVAILABLE: "available", SEAT_STATE_HELD: "held", SEAT_STATE_SOLD: "sold" };

export function seatId(section, row, number) {
  return `${section}-${row}-${String(number).padStart(3, "0")}`;
}

// Seat i is in byte i / 4 at bit 2 * (i % 4), least significant first.
export function decodeStates(base64, count) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const states = new Array(count);
  for (let i = 0; i < count; i++) states[i] = STATES[(bytes[i >> 2] >> (2 * (i & 3))) & 3] || "sold";
  return states;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

export class SeatMap {
  constructor(container, eventId, { onSelect, onLive } = {}) {
    this.container = container;
    this.eventId = eventId;
    this.onSelect = onSelect || (() => {});
    this.onLive = onLive || (() => {});
    this.buttons = new Map(); // seat id -> button
    this.selected = new Set();
    this.mine = new Set();
    this.version = "";
    this.closed = false;
  }

  async load() {
    const layout = await api.get(`/v1/events/${encodeURIComponent(this.eventId)}/layout`);
    this.layout = layout;
    this.draw(layout);
    await this.refresh();
    this.connect();
    return layout;
  }

  draw(layout) {
    this.container.replaceChildren();
    this.ids = new Array(layout.seat_count);
    for (const section of layout.sections) {
      const rows = element("div", { class: "rows" });
      for (const row of section.rows) {
        const seats = element("div", { class: "row" }, element("span", { class: "label" }, row.label));
        row.numbers.forEach((number, offset) => {
          const id = seatId(section.name, row.label, number);
          this.ids[row.first_index + offset] = id;
          const price = (Number(section.price_cents) / 100).toFixed(2);
          const button = element("button", {
            class: "seat",
            type: "button",
            "data-seat": id,
            title: `${id} · ${price} ${layout.currency}`,
            "aria-label": id,
          });
          button.addEventListener("click", () => this.toggle(id));
          this.buttons.set(id, button);
          seats.append(button);
        });
        rows.append(seats);
      }
      const price = (Number(section.price_cents) / 100).toFixed(2);
      this.container.append(
        element("section", { class: "section" }, element("h3", {}, `${section.name} · ${price} ${layout.currency}`), rows),
      );
    }
  }

  async refresh() {
    const availability = await api.get(`/v1/events/${encodeURIComponent(this.eventId)}/availability`);
    const states = decodeStates(availability.states, availability.seat_count);
    states.forEach((state, index) => this.paint(this.ids[index], state));
    this.version = availability.version;
    this.counts = { available: availability.available, held: availability.held, sold: availability.sold };
  }

  paint(id, state) {
    const button = this.buttons.get(id);
    if (!button) return;
    button.dataset.state = state;
    button.className = `seat ${state}${this.mine.has(id) ? " mine" : ""}${this.selected.has(id) ? " selected" : ""}`;
    button.disabled = state !== "available" && !this.mine.has(id);
    if (state !== "available" && this.selected.delete(id)) this.onSelect([...this.selected]);
  }

  toggle(id) {
    const button = this.buttons.get(id);
    if (button.dataset.state !== "available") return;
    if (this.selected.has(id)) this.selected.delete(id);
    else if (this.selected.size < 10) this.selected.add(id);
    this.paint(id, button.dataset.state);
    this.onSelect([...this.selected]);
  }

  // The hold's answer is newer than the map: its seats are held now, whether or
  // not the live frame saying so has arrived yet.
  markMine(ids) {
    for (const id of ids) this.mine.add(id);
    this.selected.clear();
    for (const id of ids) this.paint(id, this.buttons.get(id)?.dataset.state === "sold" ? "sold" : "held");
    this.onSelect([]);
  }

  connect() {
    if (this.closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = this.version ? `?last_event_id=${encodeURIComponent(this.version)}` : "";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/live/events/${encodeURIComponent(this.eventId)}/seats${query}`);
    this.socket = socket;
    socket.addEventListener("message", async (message) => {
      const frame = JSON.parse(message.data);
      if (frame.ready) this.onLive(true);
      if (frame.reset) await this.refresh();
      if (frame.seats) {
        const state = LIVE_STATES[frame.seats.state];
        for (const id of frame.seats.seat_ids) this.paint(id, state);
      }
      if (frame.id) this.version = frame.id;
    });
    socket.addEventListener("close", () => {
      this.onLive(false);
      // Continue from the last frame seen: the server replays what was missed.
      if (!this.closed) setTimeout(() => this.connect(), 1000);
    });
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
