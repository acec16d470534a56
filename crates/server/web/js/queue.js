// The prompt queue, as the server holds it: prompts sent while a run is active wait there in
// order, started by the server when the run ends (with or without this page). This view
// shows the items the app stream reports and edits them: remove, or move one up.
import { api, agent } from "./api.js";
import { h, replace } from "./dom.js";
import { showError } from "./notices.js";

export class PromptQueue {
  constructor(appId, el) {
    this.appId = appId;
    this.el = el;
    this.items = [];
    this.render();
  }

  /** Re-reads the queue (on load, and after this page changed it). */
  async refresh() {
    try {
      const state = await api("GET", agent(this.appId, "queue"));
      this.set(state.items);
    } catch (err) {
      showError(err, "Queue");
    }
  }

  /**
   * The queue as the server reported it, next first. The list is only redrawn when it
   * changed, so a button being pressed is not replaced under the pointer (or the focus).
   */
  set(items) {
    const key = (list) => JSON.stringify(list.map((i) => [i.id, i.input]));
    if (key(items) === key(this.items) && this.el.firstChild) return;
    this.items = items;
    this.render();
  }

  async remove(id) {
    try {
      this.set((await api("DELETE", agent(this.appId, `queue/${id}`))).items);
    } catch (err) {
      if (err.status !== 404) showError(err, "Removing a queued prompt");
      this.refresh();
    }
  }

  async moveUp(n) {
    const item = this.items[n];
    const before = this.items[n - 1];
    if (!item || !before) return;
    try {
      this.set((await api("POST", agent(this.appId, `queue/${item.id}/move`), { before: before.id })).items);
    } catch (err) {
      if (err.status !== 404) showError(err, "Moving a queued prompt");
      this.refresh();
    }
  }

  get length() {
    return this.items.length;
  }

  render() {
    this.el.hidden = this.items.length === 0;
    replace(
      this.el,
      h("h3", { id: "queue-title" }, `Queued prompts (${this.items.length})`),
      h("ol", { class: "queue", "aria-labelledby": "queue-title" },
        this.items.map((item, n) =>
          h("li", { class: "queued", dataset: { id: item.id } },
            h("span", { class: "queued-text" }, item.input),
            n > 0 ? h("button", { type: "button", class: "link up", "aria-label": `Move queued prompt ${n + 1} up: ${item.input}`, onclick: () => this.moveUp(n) }, "Up") : null,
            h("button", { type: "button", class: "link remove", "aria-label": `Remove queued prompt ${n + 1}: ${item.input}`, onclick: () => this.remove(item.id) }, "Remove"),
          ),
        ),
      ),
    );
  }
}
