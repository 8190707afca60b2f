// A ticket as a door scanner sees it: its token (a JWT signed with Ed25519)
// verified here against /v1/tickets/keys with WebCrypto, and drawn as a QR code.

import { qrcode } from "./vendor/qrcode.mjs";
import { api } from "./api.js";

function base64url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

let keys = null;

async function ticketKeys() {
  keys ??= api.get("/v1/tickets/keys").then((jwks) => jwks.keys || []);
  return keys;
}

// The claims when the signature, the key and the ticket's own fields agree;
// otherwise an Error saying which did not.
export async function verifyTicket(ticket) {
  const [header64, payload64, signature64] = ticket.token.split(".");
  const header = JSON.parse(new TextDecoder().decode(base64url(header64)));
  const claims = JSON.parse(new TextDecoder().decode(base64url(payload64)));
  if (header.alg !== "EdDSA") throw new Error(`unexpected algorithm ${header.alg}`);
  const jwk = (await ticketKeys()).find((key) => key.kid === header.kid);
  if (!jwk) throw new Error(`no published key ${header.kid}`);
  const key = await crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
  const signed = new TextEncoder().encode(`${header64}.${payload64}`);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, key, base64url(signature64), signed))) {
    throw new Error("signature does not verify");
  }
  for (const [field, claim] of [["ticket_id", "jti"], ["order_id", "order"], ["event_id", "event"], ["seat_id", "seat"]]) {
    if (claims[claim] !== ticket[field]) throw new Error(`${field} differs from the signed ticket`);
  }
  return claims;
}

export function drawQr(canvas, text, scale = 4) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const modules = qr.getModuleCount();
  const quiet = 4;
  const size = (modules + 2 * quiet) * scale;
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, size, size);
  context.fillStyle = "#000";
  for (let row = 0; row < modules; row++) {
    for (let column = 0; column < modules; column++) {
      if (qr.isDark(row, column)) context.fillRect((column + quiet) * scale, (row + quiet) * scale, scale, scale);
    }
  }
}
