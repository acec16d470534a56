// The prompt queue: prompts sent while a run is active wait here in order. It lives in
// localStorage per app, so a reload keeps it; each item can be removed.
import { h, replace } from "./dom.js";

export class PromptQueue {
  constructor(appId, el, onChange) {
    this.key = `draftsmith.queue.${appId}`;
    this.el = el;
    this.onChange = onChange || (() => {});
    try {
      this.items = JSON.parse(localStorage.getItem(this.key) || "[]");
    } catch {
      this.items = [];
    }
    this.render();
  }

  push(text, model) {
    this.items.push({ id: `q${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, text, model });
    this.save();
  }

  /** Puts an item back at the front (a start that was refused). */
  unshift(item) {
    this.items.unshift(item);
    this.save();
  }

  shift() {
    const item = this.items.shift();
    this.save();
    return item;
  }

  remove(id) {
    this.items = this.items.filter((i) => i.id !== id);
    this.save();
  }

  get length() {
    return this.items.length;
  }

  save() {
    localStorage.setItem(this.key, JSON.stringify(this.items));
    this.render();
    this.onChange();
  }

  render() {
    this.el.hidden = this.items.length === 0;
    replace(
      this.el,
      h("h3", { id: "queue-title" }, `Queued prompts (${this.items.length})`),
      h("ol", { class: "queue", "aria-labelledby": "queue-title" },
        this.items.map((item, n) =>
          h("li", { class: "queued", dataset: { id: item.id } },
            h("span", { class: "queued-text" }, item.text),
            h("button", { type: "button", class: "link remove", "aria-label": `Remove queued prompt ${n + 1}: ${item.text}`, onclick: () => this.remove(item.id) }, "Remove"),
          ),
        ),
      ),
    );
  }
}
