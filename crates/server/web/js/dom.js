// DOM helpers: every node is built with textContent, never innerHTML, so text from the
// API or the model can never become markup.

/** h("button", {class: "x", onclick: f, "aria-label": "…"}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "3 minutes ago"-style time, with the exact instant kept for a tooltip. */
export function timeAgo(iso) {
  const then = new Date(iso).getTime();
  const s = Math.max(0, Math.round((Date.now() - then) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

/** A <time> element showing a relative time, kept true by `refreshTimes`. */
export function timeEl(iso) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString(), dataset: { relative: "" } }, timeAgo(iso));
}

/** Rewrites every relative time on the page ("0s ago" must not stay so). */
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-relative]")) el.textContent = timeAgo(el.dateTime);
}

setInterval(() => refreshTimes(), 15000);
