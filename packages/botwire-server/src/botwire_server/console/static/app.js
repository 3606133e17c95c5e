// botwire console: namespaces, keys, values, edit with If-Match, delete, export.
import { api, ApiError, claims, EXACT, inexact, parseExact, remaining, setToken, token }
  from "./api.js";
import { bytes, chatTurns, countdown, el, highlight, HIGHLIGHT_MAX, meter, pretty, when }
  from "./render.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100; // keys per page
const TAIL = 50; // list items shown first, and added by "Load older"

const state = {
  ns: null, nsCursor: null,
  keyPrefix: "", cursors: [null], page: 0, nextCursor: null,
  key: null, entry: null, tail: TAIL, timer: null,
  edit: null, // {ns, key, text} while the editor is open: the only entry Save may write
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

// ---- answers that arrive late --------------------------------------------------------
// Each view (namespace list, usage, key list, open entry) numbers its loads: an answer for an
// earlier namespace, page or key, arriving after the user moved on, is dropped, never shown
// under the new one (where a click on it would read or write the wrong namespace's key).

const loads = {}; // view -> {n, ctl}: the number of its current load, and its cancel switch

/** Cancel the current load of ``view``: its answer, when it comes, is stale. */
function drop(view) {
  const cur = loads[view];
  if (cur) cur.ctl.abort();
  loads[view] = { n: (cur ? cur.n : 0) + 1, ctl: new AbortController() };
}

/** Start a load of ``view`` (cancelling the previous one): its number and abort signal. */
function begin(view) {
  drop(view);
  return { n: loads[view].n, signal: loads[view].ctl.signal };
}

const ticket = (view) => (loads[view] ? loads[view].n : 0); // to check after an await
const stale = (view, n) => ticket(view) !== n;

// ---- namespaces ------------------------------------------------------------------------

async function loadNamespaces(reset) {
  const { n, signal } = begin("namespaces");
  const list = $("ns-list");
  if (reset) { list.replaceChildren(); state.nsCursor = null; }
  const prefix = $("ns-filter").value.trim();
  try {
    let page;
    // a scoped token may match few of many namespaces: follow short pages a little
    for (let i = 0; i < 5; i++) {
      page = await api.namespaces(prefix, state.nsCursor, 100, signal);
      if (stale("namespaces", n)) return;
      state.nsCursor = page.cursor;
      for (const ns of page.namespaces) {
        list.append(el("li", { "data-ns": ns.namespace },
          el("button", { type: "button", class: "link",
            onclick: () => openNamespace(ns.namespace) },
            el("span", { text: ns.namespace }),
            el("span", { class: "muted small", text: ` ${ns.keys} keys · ${bytes(ns.bytes)}` }))));
      }
      if (page.namespaces.length || !page.cursor) break;
    }
    $("ns-more").hidden = !state.nsCursor;
    $("ns-empty").hidden = list.childElementCount > 0;
  } catch (err) {
    if (!stale("namespaces", n)) status(explain(err), true);
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
  // nothing of the previous namespace stays clickable while this one loads
  $("usage").replaceChildren(el("h2", { text: ns }));
  $("key-list").replaceChildren();
  $("key-page").textContent = "";
  await Promise.all([loadUsage(), loadKeys(0, [null])]);
}

async function loadUsage() {
  const { n, signal } = begin("usage");
  const ns = state.ns;
  const box = $("usage");
  try {
    const u = await api.usage(ns, signal);
    if (stale("usage", n)) return;
    const lim = u.limits || {};
    box.replaceChildren(
      el("h2", { text: ns }),
      meter("keys", u.keys, lim.max_keys || 0),
      meter("bytes", u.bytes, lim.max_namespace_bytes || 0, bytes),
      meter("writes today", u.writes_today, lim.writes_per_day || 0),
    );
  } catch (err) {
    if (stale("usage", n)) return;
    box.replaceChildren(el("h2", { text: ns }), el("p", { class: "error", text: explain(err) }));
  }
}

// ---- keys ------------------------------------------------------------------------------

async function loadKeys(page, cursors) {
  const { n, signal } = begin("keys");
  const ns = state.ns;
  state.cursors = cursors;
  state.page = page;
  // until this page is here, "Next" would follow the previous page's cursor
  $("key-prev").disabled = $("key-next").disabled = true;
  const list = $("key-list");
  try {
    const res = await api.keys(ns, state.keyPrefix, cursors[page], PAGE, signal);
    if (stale("keys", n)) return;
    state.nextCursor = res.cursor;
    list.replaceChildren(...res.keys.map((k) => el("li", { "data-key": k.key },
      el("button", { type: "button", class: "link",
        onclick: () => { if (ns === state.ns) openKey(k.key); } },
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
    if (stale("keys", n)) return;
    list.replaceChildren(el("li", { class: "error", text: explain(err) }));
    $("key-prev").disabled = page === 0;
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
  drop("entry");
  clearInterval(state.timer);
  // the editor's text belongs to the entry it was opened on: never to the next one
  state.key = state.entry = state.edit = null;
  $("edit-text").value = "";
  $("entry-head").replaceChildren();
  $("entry-error").textContent = "";
  $("conflict").replaceChildren();
  for (const id of ["conflict", "older", "chat", "json", "json-note", "editor", "entry-actions"]) {
    $(id).hidden = true;
  }
}

async function openKey(key, tail = TAIL) {
  closeEntry();
  const { n, signal } = begin("entry");
  const ns = state.ns;
  state.key = key;
  state.tail = tail;
  for (const li of $("key-list").children) li.classList.toggle("active", li.dataset.key === key);
  try {
    // lists are read from the tail: a 10,000-turn history costs what its last turns cost
    let entry;
    try {
      entry = await api.get(ns, key, tail, signal);
      entry.partial = Array.isArray(entry.value) && entry.value.length === tail;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === "type_mismatch")) throw err;
      if (stale("entry", n)) return;
      entry = await api.get(ns, key, undefined, signal); // not a list: read the whole value
    }
    if (stale("entry", n)) return;
    showEntry(entry);
  } catch (err) {
    if (stale("entry", n)) return;
    $("entry-error").textContent = explain(err);
  }
}

/** The value as highlighted JSON in ``box``; a large one is compact and coloured only up to
 * HIGHLIGHT_MAX characters, which ``note`` says (render.js: what froze the tab). */
function showJson(box, value, note) {
  const text = pretty(value);
  box.replaceChildren(highlight(text));
  if (note) {
    note.hidden = text.length <= HIGHLIGHT_MAX;
    const flat = !text.includes("\n"); // compact JSON has no raw newline
    note.textContent = `Large value (${bytes(text.length)} as text): ` +
      `${flat ? "shown without indentation, " : ""}highlighted up to ${bytes(HIGHLIGHT_MAX)}.`;
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
    // counted by the server's clock: this computer's may be hours off
    const tick = () => {
      ttl.textContent = `in ${countdown(remaining(entry.expires_at))} (${when(entry.expires_at)})`;
    };
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
    showJson($("json"), entry.value, $("json-note"));
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

const INEXACT = "this browser cannot keep this value's numbers exact (it lacks JSON.rawJSON), " +
  "so nothing is written; use a recent browser or the botwire CLI";

$("edit").addEventListener("click", async () => {
  const n = ticket("entry");
  const { ns, key } = state;
  try {
    // edit the whole value, never a tail of it
    const full = state.entry.partial ? await api.get(ns, key) : state.entry;
    if (stale("entry", n)) return;
    if (full.inexact) { $("entry-error").textContent = `Not editable: ${INEXACT}.`; return; }
    state.entry = { ...full, partial: false };
    const text = pretty(full.value);
    state.edit = { ns, key, text };
    $("edit-text").value = text;
    $("editor").hidden = false;
    for (const id of ["entry-actions", "json", "json-note", "chat", "older"]) $(id).hidden = true;
  } catch (err) {
    if (!stale("entry", n)) $("entry-error").textContent = explain(err);
  }
});

$("cancel").addEventListener("click", () => openKey(state.key, state.tail));

/** Write the editor's text over ``base`` (the version opened, or the newer one a conflict
 * showed): conditional on its version, keeping its remaining TTL. */
async function save(base) {
  const edit = state.edit;
  if (!edit || edit.ns !== state.ns || edit.key !== state.key) return; // not this entry's edit
  const { ns, key } = edit;
  const text = $("edit-text").value;
  if (text === edit.text) {
    status(`No change: ${key} not saved.`); // even a re-serialised equal value is not sent
    return openKey(key, state.tail);
  }
  let value;
  try {
    value = parseExact(text);
  } catch (err) {
    $("entry-error").textContent = `Not valid JSON, nothing saved: ${err.message}`;
    return;
  }
  if (!EXACT && inexact(text)) { $("entry-error").textContent = `Not saved: ${INEXACT}.`; return; }
  // keep the remaining TTL (a PUT without one would make the key permanent), by the server's
  // clock; rounded up, so the key never expires before the version it replaces would have
  const ttl = base.expires_at ? Math.max(1, Math.ceil(remaining(base.expires_at))) : undefined;
  const n = ticket("entry");
  $("save").disabled = true; // a second click would conflict with the first, as "another client"
  try {
    const res = await api.put(ns, key, value, { version: base.version, ttl });
    status(`Saved ${key}: version ${res.version}.`);
    if (stale("entry", n)) return;
    await openKey(key, state.tail);
    loadUsage();
  } catch (err) {
    const unknown = err instanceof ApiError && err.code === "unexpected_answer";
    const what = `${unknown ? "Not saved?" : "Not saved:"} ${explain(err)}` +
      (unknown ? ". Reopen the key to see what it holds." : "");
    if (stale("entry", n)) return status(`${key}: ${what}`, true);
    if (err instanceof ApiError && err.status === 412) return showConflict("save", value);
    $("entry-error").textContent = what;
  } finally {
    $("save").disabled = false;
  }
}

$("save").addEventListener("click", () => save(state.entry));

/** Another client wrote first (a 412 on a save or a delete): show its version and value and
 * what the user may do about it. A delete's conflict never offers to write anything. */
async function showConflict(kind, sent) {
  const box = $("conflict");
  const n = ticket("entry");
  const { ns, key, entry: opened } = state;
  const nothing = kind === "delete" ? "Nothing was deleted." : "Nothing was overwritten.";
  let now;
  try {
    now = await api.get(ns, key);
  } catch (err) {
    if (stale("entry", n)) return;
    box.replaceChildren(el("p", { text: `Conflict: the key changed or was deleted ` +
      `(${explain(err)}). ${nothing}` }));
    box.hidden = false;
    return;
  }
  if (stale("entry", n)) return;
  if (kind === "save" && JSON.stringify(now.value) === JSON.stringify(sent)) {
    // what the key holds is what was sent: this save's own earlier attempt, whose answer was
    // lost (a dropped connection, a browser re-sending the PUT), not another client's write
    status(`Saved ${key}: version ${now.version} (an earlier attempt of this save had stored ` +
      "it; its answer was lost).");
    await openKey(key, state.tail);
    return loadUsage();
  }
  const pre = el("pre", { class: "json" });
  showJson(pre, now.value);
  const button = (text, onclick, cls) => el("button", { type: "button", class: cls || "",
    text, onclick: () => { if (!stale("entry", n)) onclick(); } });
  const reopen = () => openKey(key, state.tail);
  if (kind === "delete") {
    box.replaceChildren(
      el("p", { text: `Conflict: another client saved version ${now.version} after you ` +
        `opened version ${opened.version}. ${nothing} The current value:` }),
      pre,
      el("div", { class: "row" },
        button(`Delete anyway (version ${now.version})`, () => remove(now), "danger"),
        button("Cancel", reopen)));
  } else {
    // the edit stays in the editor
    box.replaceChildren(
      el("p", { text: `Conflict: another client saved version ${now.version} after you ` +
        `opened version ${opened.version}. ${nothing} Their value:` }),
      pre,
      el("div", { class: "row" },
        // over their version, with its TTL: the one being overwritten
        button("Overwrite with mine", () => { box.hidden = true; save(now); }),
        button("Discard mine, show theirs", reopen)));
  }
  box.hidden = false;
}

// ---- delete ----------------------------------------------------------------------------

$("delete").addEventListener("click", () => {
  $("confirm-text").textContent =
    `Delete key "${state.key}" (version ${state.entry.version}) from namespace "${state.ns}"?`;
  $("confirm").showModal();
});

$("confirm").addEventListener("close", () => {
  if ($("confirm").returnValue === "ok" && state.entry) remove(state.entry);
});

/** Delete the open key if it is still ``target``'s version. */
async function remove(target) {
  const { ns, key } = state;
  const n = ticket("entry");
  try {
    const res = await api.remove(ns, key, target.version);
    status(res.deleted ? `Deleted ${key}.` : `${key} was already gone.`);
    if (stale("entry", n)) return;
    closeEntry();
    loadKeys(state.page, state.cursors);
    loadUsage();
  } catch (err) {
    const unknown = err instanceof ApiError && err.code === "unexpected_answer";
    const what = `${unknown ? "Not deleted?" : "Not deleted:"} ${explain(err)}` +
      (unknown ? ". Reopen the key to see whether it is still there." : "");
    if (stale("entry", n)) return status(`${key}: ${what}`, true);
    if (err instanceof ApiError && err.status === 412) return showConflict("delete");
    $("entry-error").textContent = what;
  }
}

// ---- export as JSON Lines --------------------------------------------------------------

/** Gets of ``keys`` in one batch; when the answer would pass the server's per-answer limit
 * (413), one key at a time instead (each entry fits by the value and list limits). */
async function readMany(ns, keys) {
  try {
    const page = await api.batchGet(ns, keys);
    if (page.inexact) throw new Error(INEXACT);
    return page.results;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 413)) throw err;
  }
  const out = [];
  for (const key of keys) {
    try {
      const entry = await api.get(ns, key);
      if (entry.inexact) throw new Error(INEXACT);
      out.push(entry);
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
          // values keep their exact numbers (JSON.rawJSON), written out as the server has them
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
