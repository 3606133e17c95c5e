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

export async function call(method, path, { body, headers = {}, query } = {}) {
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
  });
  let payload = null;
  const text = await res.text();
  if (text) {
    try { payload = JSON.parse(text); } catch { payload = { error: { message: text.slice(0, 300) } }; }
  }
  if (!res.ok) throw new ApiError(res.status, payload);
  return payload;
}

export const api = {
  namespaces: (prefix, cursor, limit = 100) =>
    call("GET", "v1/namespaces", { query: { prefix, cursor, limit } }),
  usage: (ns) => call("GET", `v1/namespaces/${seg(ns)}`),
  keys: (ns, prefix, cursor, limit = 100) =>
    call("GET", `v1/namespaces/${seg(ns)}/keys`, { query: { prefix, cursor, limit } }),
  get: (ns, key, tail) =>
    call("GET", `v1/namespaces/${seg(ns)}/keys/${seg(key)}`, { query: { tail } }),
  put: (ns, key, value, { version, ttl } = {}) =>
    call("PUT", `v1/namespaces/${seg(ns)}/keys/${seg(key)}`, {
      body: ttl ? { value, ttl } : { value },
      headers: version ? { "If-Match": `"${version}"`, "X-BotWire-Key": seg(key) }
        : { "X-BotWire-Key": seg(key) },
    }),
  remove: (ns, key, version) =>
    call("DELETE", `v1/namespaces/${seg(ns)}/keys/${seg(key)}`, {
      headers: version ? { "If-Match": `"${version}"` } : {},
    }),
  batchGet: (ns, keys) =>
    call("POST", `v1/namespaces/${seg(ns)}/batch`, {
      body: { ops: keys.map((key) => ({ op: "get", key })), atomic: false },
    }),
};
