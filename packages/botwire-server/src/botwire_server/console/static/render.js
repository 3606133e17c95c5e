// Rendering helpers. Stored data is untrusted (agents write it): it only ever goes into
// textContent, never parsed as HTML, so a value cannot inject markup or script.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// A 1 MiB value of small numbers froze the tab for ~20 s: a span per token, and half a million
// indented lines (Chromium lays out 3.5 MB of them in a <pre> in ~7 s, in a textarea in ~18 s).
/** Characters of a value's text that get colours; the rest is one plain text node. */
export const HIGHLIGHT_MAX = 32 * 1024;
/** Indented text up to this size and line count; a larger value is shown compact. */
export const PRETTY_MAX = 256 * 1024;
const PRETTY_LINES = 10000;

/** A value as JSON text: indented, or compact when large (see PRETTY_MAX); numbers kept as
 * JSON.rawJSON come out exactly as stored. */
export function pretty(value) {
  const text = JSON.stringify(value, null, 2);
  if (text.length > PRETTY_MAX) return JSON.stringify(value);
  let lines = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) {
    if (++lines > PRETTY_LINES) return JSON.stringify(value);
  }
  return text;
}

/** JSON text as spans classed by token kind (key, string, number, literal, punctuation), up
 * to ``max`` characters; the text itself is shown whole. */
export function highlight(text, max = HIGHLIGHT_MAX) {
  const frag = document.createDocumentFragment();
  const re = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}\[\],:])/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index >= max) break;
    if (m.index > last) frag.append(text.slice(last, m.index));
    if (m[1] !== undefined) {
      frag.append(el("span", { class: m[2] ? "j-key" : "j-str", text: m[1] }));
      if (m[2]) frag.append(el("span", { class: "j-punct", text: m[2] }));
    } else if (m[3] !== undefined) frag.append(el("span", { class: "j-num", text: m[3] }));
    else if (m[4] !== undefined) frag.append(el("span", { class: "j-lit", text: m[4] }));
    else frag.append(el("span", { class: "j-punct", text: m[5] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

/** A list item shaped like a chat turn: [{role, text}] (one item may hold two turns). */
export function chatTurns(item) {
  if (!item || typeof item !== "object" || Array.isArray(item)) return null;
  const text = (v) => (typeof v === "string" ? v : JSON.stringify(v));
  const content = item.content ?? item.text ?? item.message;
  const role = item.role ?? item.type ?? item.sender;
  if (role !== undefined && content !== undefined) return [{ role: String(role), text: text(content) }];
  if (item.user !== undefined || item.assistant !== undefined) {
    const out = [];
    if (item.user !== undefined) out.push({ role: "user", text: text(item.user) });
    if (item.assistant !== undefined) out.push({ role: "assistant", text: text(item.assistant) });
    return out;
  }
  return null;
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** "1h 2m 3s" for ``seconds`` left (counted by the caller on the server's clock). */
export function countdown(seconds) {
  const left = Math.max(0, Math.round(seconds));
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  return left === 0 ? "expired" : `${h ? h + "h " : ""}${h || m ? m + "m " : ""}${s}s`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** "used / limit" with a bar; a limit of 0 means unlimited. */
export function meter(label, used, limit, fmt = String) {
  const pct = limit ? Math.min(100, (100 * used) / limit) : 0;
  const bar = el("span", { class: "meter" }, el("span", { class: pct > 90 ? "fill hot" : "fill" }));
  bar.firstChild.style.width = `${pct}%`; // CSSOM, not an inline style attribute: CSP allows it
  return el("div", { class: "usage-row" },
    el("span", { class: "label", text: label }),
    bar,
    el("span", { text: `${fmt(used)} / ${limit ? fmt(limit) : "unlimited"}` }));
}
