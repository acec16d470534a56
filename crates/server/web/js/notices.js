// Errors are shown, never swallowed: one dismissable line per error with its code.
import { h } from "./dom.js";

export function showError(err, context) {
  const box = document.getElementById("errors");
  const code = err && err.code ? err.code : "ERROR";
  const message = err && err.message ? err.message : String(err);
  const line = h(
    "div",
    { class: "error", dataset: { code } },
    h("strong", {}, code),
    " ",
    context ? `${context}: ` : "",
    message,
    " ",
    h("button", { type: "button", class: "link", "aria-label": `Dismiss error ${code}`, onclick: () => line.remove() }, "Dismiss"),
  );
  box.append(line);
  console.warn(code, message, err && err.details);
}

export function clearErrors() {
  document.getElementById("errors").replaceChildren();
}
