// botwire console: namespaces, keys, values, edit with If-Match, delete, export.
import { api, ApiError, claims, setToken, token } from "./api.js";
import { bytes, chatTurns, countdown, el, highlight, meter, when } from "./render.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100; // keys per page
const TAIL = 50; // list items shown first, and added by "Load older"

const state = {
  ns: null, nsCursor: null,
  keyPrefix: "", cursors: [null], page: 0, nextCursor: null,
  key: null, entry: null, tail: TAIL, timer: null,
};

function status(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

function explain(err) {
  return err instanceof ApiError ? `${err.message} (${err.status} ${err.code})` : String(err);
}

// ---- sign-in ---------------------------------------------------------------------------

async function start() {
  try {
    await api.namespaces("", null, 1);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showSignIn(token() ? explain(err) : "");
    status(explain(err), true);
  }
  showMain();
}

function showSignIn(message) {
  $("main").hidden = true;
  $("signin").hidden = false;
  $("signout").hidden = $("refresh").hidden = true;
  $("who").textContent = "";
  $("signin-error").textContent = message || "";
  $("token").focus();
}

function showMain() {
  $("signin").hidden = true;
  $("main").hidden = false;
  $("refresh").hidden = false;
  const c = claims();
  $("signout").hidden = !token();
  $("who").textContent = c
    ? `token: ${[].concat(c.ns).join(", ")} · ${c.perm === "read" ? "read-only" : c.perm}`
    : "anonymous (loopback)";
  loadNamespaces(true);
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  setToken($("token").value.trim());
  $("token").value = "";
  await start();
});

$("signout").addEventListener("click", () => {
  setToken("");
  location.reload();
});

// ---- namespaces ------------------------------------------------------------------------

async function loadNamespaces(reset) {
  const list = $("ns-list");
  if (reset) { list.replaceChildren(); state.nsCursor = null; }
  const prefix = $("ns-filter").value.trim();
  try {
    let page;
    // a scoped token may match few of many namespaces: follow short pages a little
    for (let i = 0; i < 5; i++) {
      page = await api.namespaces(prefix, state.nsCursor, 100);
      state.nsCursor = page.cursor;
      for (const n of page.namespaces) {
        list.append(el("li", { "data-ns": n.namespace },
          el("button", { type: "button", class: "link", onclick: () => openNamespace(n.namespace) },
            el("span", { text: n.namespace }),
            el("span", { class: "muted small", text: ` ${n.keys} keys · ${bytes(n.bytes)}` }))));
      }
      if (page.namespaces.length || !page.cursor) break;
    }
    $("ns-more").hidden = !state.nsCursor;
    $("ns-empty").hidden = list.childElementCount > 0;
  } catch (err) {
    status(explain(err), true);
  }
}

$("ns-more").addEventListener("click", () => loadNamespaces(false));
$("ns-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await loadNamespaces(true);
  const typed = $("ns-filter").value.trim();
  // a namespace typed in full opens even when it is not listed yet (e.g. still empty)
  if (typed && !document.querySelector(`#ns-list li[data-ns="${CSS.escape(typed)}"]`)
      && /^[A-Za-z0-9._\-:@]{1,128}$/.test(typed)) openNamespace(typed);
});

async function openNamespace(ns) {
  state.ns = ns;
  for (const li of $("ns-list").children) li.classList.toggle("active", li.dataset.ns === ns);
  for (const id of ["key-prefix", "key-search", "export"]) $(id).disabled = false;
  state.keyPrefix = $("key-prefix").value = "";
  closeEntry();
  await Promise.all([loadUsage(), loadKeys(0, [null])]);
}

async function loadUsage() {
  const box = $("usage");
  try {
    const u = await api.usage(state.ns);
    const lim = u.limits || {};
    box.replaceChildren(
      el("h2", { text: state.ns }),
      meter("keys", u.keys, lim.max_keys || 0),
      meter("bytes", u.bytes, lim.max_namespace_bytes || 0, bytes),
      meter("writes today", u.writes_today, lim.writes_per_day || 0),
    );
  } catch (err) {
    box.replaceChildren(el("h2", { text: state.ns }), el("p", { class: "error", text: explain(err) }));
  }
}

// ---- keys ------------------------------------------------------------------------------

async function loadKeys(page, cursors) {
  state.cursors = cursors;
  state.page = page;
  const list = $("key-list");
  try {
    const res = await api.keys(state.ns, state.keyPrefix, cursors[page], PAGE);
    state.nextCursor = res.cursor;
    list.replaceChildren(...res.keys.map((k) => el("li", { "data-key": k.key },
      el("button", { type: "button", class: "link", onclick: () => openKey(k.key) },
        el("span", { class: "key", text: k.key }),
        el("span", { class: "muted small",
          text: ` v${k.version} · ${bytes(k.bytes)}${k.expires_at ? " · ttl" : ""}` })))));
    if (!res.keys.length) list.append(el("li", { class: "muted", text: "No keys." }));
    list.scrollTop = 0;
    const first = page * PAGE + 1;
    $("key-page").textContent = res.keys.length
      ? `page ${page + 1} · keys ${first}–${first + res.keys.length - 1}` : "";
    $("key-prev").disabled = page === 0;
    $("key-next").disabled = !res.cursor;
  } catch (err) {
    list.replaceChildren(el("li", { class: "error", text: explain(err) }));
  }
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.keyPrefix = $("key-prefix").value;
  loadKeys(0, [null]);
});
$("key-next").addEventListener("click", () => {
  const cursors = state.cursors.slice(0, state.page + 1);
  cursors.push(state.nextCursor);
  loadKeys(state.page + 1, cursors);
});
$("key-prev").addEventListener("click", () => loadKeys(state.page - 1, state.cursors));

// ---- one entry -------------------------------------------------------------------------

function closeEntry() {
  clearInterval(state.timer);
  state.key = state.entry = null;
  $("entry-head").replaceChildren();
  $("entry-error").textContent = "";
  for (const id of ["conflict", "older", "chat", "json", "editor", "entry-actions"]) $(id).hidden = true;
}

async function openKey(key, tail = TAIL) {
  closeEntry();
  state.key = key;
  state.tail = tail;
  for (const li of $("key-list").children) li.classList.toggle("active", li.dataset.key === key);
  try {
    // lists are read from the tail: a 10,000-turn history costs what its last turns cost
    let entry;
    try {
      entry = await api.get(state.ns, key, tail);
      entry.partial = Array.isArray(entry.value) && entry.value.length === tail;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "type_mismatch")) throw err;
      entry = await api.get(state.ns, key); // not a list: read the whole value
    }
    showEntry(entry);
  } catch (err) {
    $("entry-error").textContent = explain(err);
  }
}

function showEntry(entry) {
  state.entry = entry;
  const head = $("entry-head");
  const ttl = el("span", { class: "ttl" });
  head.replaceChildren(
    el("h2", { class: "key", text: entry.key }),
    el("dl", {},
      el("dt", { text: "version" }), el("dd", { class: "version", text: String(entry.version) }),
      el("dt", { text: "created" }), el("dd", { text: when(entry.created_at) }),
      el("dt", { text: "updated" }), el("dd", { text: when(entry.updated_at) }),
      el("dt", { text: "expires" }), el("dd", {}, entry.expires_at ? ttl : "never")));
  clearInterval(state.timer);
  if (entry.expires_at) {
    const tick = () => { ttl.textContent = `in ${countdown(entry.expires_at)} (${when(entry.expires_at)})`; };
    tick();
    state.timer = setInterval(tick, 1000);
  }
  const turns = Array.isArray(entry.value) ? entry.value.map(chatTurns) : null;
  const chat = turns && turns.length && turns.every(Boolean);
  $("chat").hidden = !chat;
  $("json").hidden = !!chat;
  if (chat) {
    $("chat").replaceChildren(...turns.flat().map((t) =>
      el("div", { class: `bubble ${/^(user|human)$/i.test(t.role) ? "me" : "them"}` },
        el("span", { class: "role", text: t.role }), el("span", { text: t.text }))));
    $("chat").scrollTop = $("chat").scrollHeight; // newest at the bottom, like a chat
  } else {
    $("json").replaceChildren(highlight(entry.value));
  }
  $("older").hidden = !entry.partial;
  $("entry-actions").hidden = false;
}

$("older").addEventListener("click", async () => {
  const keep = $("chat").scrollHeight - $("chat").scrollTop;
  await openKey(state.key, state.tail + TAIL);
  $("chat").scrollTop = $("chat").scrollHeight - keep; // stay where the reader was
});

// ---- edit (conditional save) -----------------------------------------------------------

$("edit").addEventListener("click", async () => {
  try {
    // edit the whole value, never a tail of it
    const full = state.entry.partial ? await api.get(state.ns, state.key) : state.entry;
    state.entry = { ...full, partial: false };
    $("edit-text").value = JSON.stringify(full.value, null, 2);
    $("editor").hidden = false;
    for (const id of ["entry-actions", "json", "chat", "older"]) $(id).hidden = true;
  } catch (err) {
    $("entry-error").textContent = explain(err);
  }
});

$("cancel").addEventListener("click", () => openKey(state.key, state.tail));

async function save(version) {
  let value;
  try {
    value = JSON.parse($("edit-text").value);
  } catch (err) {
    $("entry-error").textContent = `Not valid JSON, nothing saved: ${err.message}`;
    return;
  }
  const e = state.entry;
  // keep the remaining TTL: a PUT without one would make the key permanent
  const ttl = e.expires_at ? Math.max(1, Math.ceil(e.expires_at - Date.now() / 1000)) : undefined;
  try {
    const res = await api.put(state.ns, state.key, value, { version, ttl });
    status(`Saved ${state.key}: version ${res.version}.`);
    await openKey(state.key, state.tail);
    loadUsage();
  } catch (err) {
    if (err instanceof ApiError && err.status === 412) return showConflict();
    $("entry-error").textContent = `Not saved: ${explain(err)}`;
  }
}

$("save").addEventListener("click", () => save(state.entry.version));

async function showConflict() {
  // another client wrote first: show its version; the edit stays in the editor
  const box = $("conflict");
  try {
    const now = await api.get(state.ns, state.key);
    box.replaceChildren(
      el("p", { text: `Conflict: another client saved version ${now.version} after you opened ` +
        `version ${state.entry.version}. Nothing was overwritten. Their value:` }),
      el("pre", { class: "json" }, highlight(now.value)),
      el("div", { class: "row" },
        el("button", { type: "button", onclick: () => { box.hidden = true; save(now.version); },
          text: "Overwrite with mine" }),
        el("button", { type: "button", onclick: () => openKey(state.key, state.tail),
          text: "Discard mine, show theirs" })));
  } catch (err) {
    box.replaceChildren(el("p", { text: `Conflict: the key changed or was deleted (${explain(err)}).` }));
  }
  box.hidden = false;
}

// ---- delete ----------------------------------------------------------------------------

$("delete").addEventListener("click", () => {
  $("confirm-text").textContent =
    `Delete key "${state.key}" (version ${state.entry.version}) from namespace "${state.ns}"?`;
  $("confirm").showModal();
});

$("confirm").addEventListener("close", async () => {
  if ($("confirm").returnValue !== "ok") return;
  try {
    const res = await api.remove(state.ns, state.key, state.entry.version);
    status(res.deleted ? `Deleted ${state.key}.` : `${state.key} was already gone.`);
    closeEntry();
    loadKeys(state.page, state.cursors);
    loadUsage();
  } catch (err) {
    if (err instanceof ApiError && err.status === 412) return showConflict();
    $("entry-error").textContent = `Not deleted: ${explain(err)}`;
  }
});

// ---- export as JSON Lines --------------------------------------------------------------

/** Gets of ``keys`` in one batch; when the answer would pass the server's per-answer limit
 * (413), one key at a time instead (each entry fits by the value and list limits). */
async function readMany(ns, keys) {
  try {
    return (await api.batchGet(ns, keys)).results;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 413)) throw err;
  }
  const out = [];
  for (const key of keys) {
    try {
      out.push(await api.get(ns, key));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      out.push({ found: false }); // deleted or expired meanwhile
    }
  }
  return out;
}

$("export").addEventListener("click", async () => {
  const ns = state.ns;
  const lines = [];
  let cursor = null;
  try {
    do {
      const page = await api.keys(ns, "", cursor, 1000);
      cursor = page.cursor;
      for (let i = 0; i < page.keys.length; i += 100) {
        const chunk = page.keys.slice(i, i + 100).map((k) => k.key);
        const results = await readMany(ns, chunk);
        results.forEach((r, j) => {
          if (r && r.found !== false && r.version !== undefined) {
            lines.push(JSON.stringify({ key: chunk[j], value: r.value, version: r.version,
              expires_at: r.expires_at ?? null }));
          }
        });
      }
      status(`Exporting ${ns}: ${lines.length} keys…`);
    } while (cursor);
  } catch (err) {
    return status(`Export of ${ns} failed: ${explain(err)}`, true);
  }
  const blob = new Blob([lines.join("\n") + (lines.length ? "\n" : "")], { type: "application/x-ndjson" });
  const a = el("a", { href: URL.createObjectURL(blob), download: `${ns}.jsonl` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  status(`Exported ${lines.length} keys of ${ns}.`);
});

// ---- refresh ---------------------------------------------------------------------------

$("refresh").addEventListener("click", async () => {
  await loadNamespaces(true);
  if (state.ns) {
    await Promise.all([loadUsage(), loadKeys(state.page, state.cursors)]);
    if (state.key) await openKey(state.key, state.tail);
  }
  status("Refreshed.");
});

start();
