// The console's only way to the server: the public v1 API, same origin, with the pasted token.
// No cookies are involved (credentials: "omit"), so another site cannot ride on a session.

const TOKEN_KEY = "botwire.token";
// The API lives beside /console/: keep any path prefix a reverse proxy adds.
const BASE = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, payload) {
    const err = (payload && payload.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || String(status);
    this.payload = payload;
  }
}

/** A 2xx that is not botwire's JSON: something between the page and the server (a proxy's
 * catch-all page, a captive portal) answered, so whether a write happened is unknown. */
function unexpected(method, url, res, what) {
  const kind = res.headers.get("Content-Type") || "no Content-Type";
  return new ApiError(res.status, { error: { code: "unexpected_answer",
    message: `unexpected answer to ${method} ${url.pathname}: HTTP ${res.status} (${kind}), ` +
      `${what}; something between this page and botwire-server answered instead of it` } });
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The claims of the pasted JWT (for display only: the server decides what is allowed). */
export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const part = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

/** Percent-encode a key or namespace for a path segment: every byte outside unreserved. */
export function seg(text) {
  const out = encodeURIComponent(text).replace(/[!'()*]/g, (c) =>
    "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return out === "." || out === ".." ? out.replace(/\./g, "%2E") : out;
}

// ---- exact numbers ---------------------------------------------------------------------
// A JS number cannot hold 12345678901234567890 or tell 1.0 from 1: a value read with plain
// JSON.parse and written back would change. Numbers whose text a double does not reproduce
// are kept as their source text (JSON.rawJSON), which JSON.stringify writes out verbatim.

export const EXACT = typeof JSON.rawJSON === "function"
  && JSON.parse("1.0", (k, v, ctx) => ctx && ctx.source) === "1.0";

function keepNumber(key, v, ctx) {
  return typeof v === "number" && String(v) !== ctx.source ? JSON.rawJSON(ctx.source) : v;
}

/** JSON.parse that keeps every number exactly (where the browser can). */
export function parseExact(text) {
  return EXACT ? JSON.parse(text, keepNumber) : JSON.parse(text);
}

// a browser without JSON.rawJSON: find numbers a double would change, to refuse writing them
const TOKENS = /"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
export function inexact(text) {
  for (const m of text.matchAll(TOKENS)) {
    if (m[1] !== undefined && String(Number(m[1])) !== m[1]) return true;
  }
  return false;
}

// ---- the server's clock ----------------------------------------------------------------
// TTLs are the server's times: remaining time is counted from the server's Date header (the
// last one seen) plus this page's monotonic clock, never from the computer's clock, which may
// be hours off. Date has whole seconds and arrives late, so this errs towards more time left.
let serverClock = null;

export function serverNow() {
  return serverClock ? serverClock.at + (performance.now() - serverClock.mono) / 1000
    : Date.now() / 1000;
}

/** Seconds left until ``expiresAt`` (a server time), by the server's clock. */
export function remaining(expiresAt) {
  return expiresAt - serverNow();
}

// ---- requests --------------------------------------------------------------------------

async function request(method, path, { body, headers = {}, query, signal } = {}) {
  const url = new URL(path, BASE);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const h = { Accept: "application/json", ...headers };
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
    signal,
  });
  const date = Date.parse(res.headers.get("Date") || "");
  if (!Number.isNaN(date)) serverClock = { at: date / 1000, mono: performance.now() };
  const text = await res.text();
  let payload = null;
  const isJson = /^application\/([a-z.+-]*\+)?json\b/i.test(res.headers.get("Content-Type") || "");
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      if (res.ok) throw unexpected(method, url, res, "not JSON");
      payload = { error: { message: text.slice(0, 300) } };
    }
  }
  if (!res.ok) throw new ApiError(res.status, payload);
  if (!isJson || payload === null || typeof payload !== "object") {
    throw unexpected(method, url, res, "not botwire's JSON");
  }
  return { payload, text, url, res };
}

export async function call(method, path, options) {
  return (await request(method, path, options)).payload;
}

/** A call whose answer holds stored values: ``pick(exact)`` returns the values of the exact
 * parse, ``graft(payload, values)`` puts them in place of the plain ones. */
async function callValues(method, path, options, pick, graft) {
  const { payload, text } = await request(method, path, options);
  // the common case costs one stringify: every number came back as the server wrote it (the
  // reviver with its source text is ~100x slower: 1.5 s for a 1 MiB value of small numbers)
  if (JSON.stringify(payload) !== text) {
    if (EXACT) graft(payload, pick(JSON.parse(text, keepNumber)));
    else if (inexact(text)) payload.inexact = true;
  }
  return payload;
}

// Every request whose path carries a key sends it again in X-BotWire-Key: a proxy that
// decodes and normalises paths ("a/../../b") is then refused (400 key_rewritten) instead of
// reading, writing or deleting another key, or another namespace's.
const echo = (key, headers = {}) => ({ ...headers, "X-BotWire-Key": seg(key) });
const keyPath = (ns, key) => `v1/namespaces/${seg(ns)}/keys/${seg(key)}`;

function must(ok, method, what) {
  return (res) => {
    if (!ok(res)) {
      throw new ApiError(200, { error: { code: "unexpected_answer",
        message: `unexpected answer to ${method}: ${what} is missing; something between this ` +
          "page and botwire-server answered instead of it" } });
    }
    return res;
  };
}

export const api = {
  namespaces: (prefix, cursor, limit = 100, signal) =>
    call("GET", "v1/namespaces", { query: { prefix, cursor, limit }, signal })
      .then(must((r) => Array.isArray(r.namespaces), "GET v1/namespaces", "namespaces")),
  usage: (ns, signal) => call("GET", `v1/namespaces/${seg(ns)}`, { signal }),
  keys: (ns, prefix, cursor, limit = 100, signal) =>
    call("GET", `v1/namespaces/${seg(ns)}/keys`, { query: { prefix, cursor, limit }, signal })
      .then(must((r) => Array.isArray(r.keys), "GET keys", "keys")),
  get: (ns, key, tail, signal) =>
    callValues("GET", keyPath(ns, key), { query: { tail }, headers: echo(key), signal },
      (exact) => exact.value, (entry, value) => { entry.value = value; })
      .then(must((r) => Number.isInteger(r.version), "GET key", "its version")),
  put: (ns, key, value, { version, ttl } = {}) =>
    call("PUT", keyPath(ns, key), {
      body: ttl ? { value, ttl } : { value },
      headers: echo(key, version ? { "If-Match": `"${version}"` } : {}),
    }).then(must((r) => Number.isInteger(r.version), "PUT key", "the new version")),
  remove: (ns, key, version) =>
    call("DELETE", keyPath(ns, key), {
      headers: echo(key, version ? { "If-Match": `"${version}"` } : {}),
    }).then(must((r) => typeof r.deleted === "boolean", "DELETE key", "deleted")),
  // keys travel in the body here, which no proxy rewrites: there is no key echo to send
  batchGet: (ns, keys) =>
    callValues("POST", `v1/namespaces/${seg(ns)}/batch`,
      { body: { ops: keys.map((key) => ({ op: "get", key })), atomic: false } },
      (exact) => exact.results, (page, results) => {
        if (!Array.isArray(page.results)) return;
        page.results.forEach((r, i) => { if (r && "value" in r) r.value = results[i].value; });
      })
      .then(must((r) => Array.isArray(r.results) && r.results.length === keys.length,
        "POST batch", "a result per key")),
};
