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

/** Pretty JSON as spans classed by token kind (key, string, number, literal, punctuation). */
export function highlight(value) {
  const text = JSON.stringify(value, null, 2);
  const frag = document.createDocumentFragment();
  const re = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}\[\],:])/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
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

export function countdown(expiresAt) {
  const left = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
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
