// The API as the page uses it: same-origin fetches through the edge, the session
// in cookies this script cannot read (httpOnly), and a CSRF token it can: the
// edge refuses a cookie-authenticated write whose x-groundwork-csrf header does
// not repeat the gw_csrf cookie.

const SESSION_HEADER = { "x-groundwork-session": "cookie" };
const listeners = new Set();

// The last request, for the "what happened" panel.
export let lastRequest = null;

export function onRequest(listener) {
  listeners.add(listener);
}

// A service's refusal names its reason in a google.rpc.ErrorInfo (the edge's own
// refusals in "reason"): ADMISSION_REQUIRED reads as admission_required.
function errorInfoReason(body) {
  const info = (body.details || []).find((d) => String(d["@type"] || "").endsWith("google.rpc.ErrorInfo"));
  return info && info.reason ? String(info.reason).toLowerCase() : "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.reason = body.reason || errorInfoReason(body);
    this.body = body;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return "";
}

export function signedIn() {
  // gw_csrf lives exactly as long as the session cookies it protects.
  return cookie("gw_csrf") !== "";
}

export function newKey(prefix) {
  return `${prefix}-${crypto.randomUUID()}`;
}

async function send(method, path, { body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...SESSION_HEADER, ...headers } };
  if (method !== "GET" && method !== "HEAD") {
    init.headers["x-groundwork-csrf"] = cookie("gw_csrf");
  }
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const started = performance.now();
  const response = await fetch(path, init);
  const text = await response.text();
  lastRequest = {
    method,
    path,
    status: response.status,
    millis: Math.round(performance.now() - started),
    traceId: response.headers.get("x-groundwork-trace-id") || "",
    encoding: response.headers.get("content-encoding") || "identity",
    cache: response.headers.get("age") !== null ? "edge cache" : "",
  };
  for (const listener of listeners) listener(lastRequest);
  let parsed = {};
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { message: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

let refreshing = null;

// An expired access cookie is renewed once from the refresh cookie, then the
// request is sent again; a refresh that fails ends the session.
export async function call(method, path, options = {}) {
  try {
    return await send(method, path, options);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || !signedIn()) throw error;
    refreshing ??= send("POST", "/v1/auth/refresh", { body: {} }).finally(() => {
      refreshing = null;
    });
    await refreshing;
    return send(method, path, options);
  }
}

export const api = {
  get: (path, options) => call("GET", path, options),
  post: (path, body, options = {}) => call("POST", path, { ...options, body }),
};

export async function login(email, password) {
  await send("POST", "/v1/auth/login", { body: { email, password } });
}

export async function signUp(email, password) {
  await send("POST", "/v1/auth/signup", { body: { email, password } });
  await login(email, password);
}

export async function logout() {
  await send("POST", "/v1/auth/logout", { body: {} });
}

export function refresh() {
  return send("POST", "/v1/auth/refresh", { body: {} });
}
