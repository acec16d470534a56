// The app's preview, the builder's main stage: the live dev server (hot reload) in a
// sandboxed iframe whenever the app can have one, with its state (starting, live, crashed
// with its output, restarted), else the built output or the draft's files; device widths
// and a reload button. A live iframe is kept across runs so hot reload keeps the page.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { showError } from "./notices.js";

const DEVICES = [["phone", "Phone", "390px"], ["tablet", "Tablet", "768px"], ["desktop", "Desktop", "100%"]];
const STATES = {
  starting: "Starting the dev server…",
  live: "Live · hot reload",
  crashed: "The dev server crashed",
  stopped: "The dev server stopped",
  none: "Waiting for the dev server…",
};

export class Preview {
  constructor(el, app) {
    this.el = el;
    this.appId = app.id;
    this.template = app.template;
    this.mode = "live";
    this.device = "desktop";
    this.current = null;
    this.timer = null;
  }

  async refresh() {
    if (this.mode === "live" && this.current?.source === "live" && this.frame?.isConnected) {
      return this.poll();
    }
    try {
      const live = this.mode === "live" ? "?live=true" : "";
      const p = await api("POST", `/admin/apps/${this.appId}/preview${live}`);
      this.current = p;
      this.render(p);
      if (p.source === "live") this.poll();
    } catch (err) {
      replace(this.el, h("p", { class: "muted" }, "No preview."));
      showError(err, "Preview");
    }
  }

  render(p) {
    this.state = h("span", { id: "preview-state", class: "preview-state", role: "status", dataset: { state: p.source === "live" ? "starting" : p.source } },
      p.source === "live" ? STATES.starting : p.source === "build" ? "Built output" : "Draft files");
    this.output = h("pre", { class: "preview-output", hidden: true, "aria-label": "Dev server output" });
    this.frame = h("iframe", { class: "preview", title: "Live preview of the app", src: p.url, sandbox: "allow-scripts allow-forms allow-popups allow-modals" });
    this.frame.style.width = DEVICES.find(([id]) => id === this.device)[2];
    const modes = h("span", { class: "seg", role: "group", "aria-label": "Preview source" },
      this.modeButton("live", "Live"), this.modeButton("build", "Built output"));
    const devices = h("span", { class: "seg", role: "group", "aria-label": "Device width" },
      DEVICES.map(([id, label, width]) => h("button", { type: "button", id: `device-${id}`, "aria-pressed": String(id === this.device),
        onclick: (e) => this.resize(id, width, e.currentTarget) }, label)));
    replace(this.el,
      h("div", { class: "preview-bar" }, this.state, modes, devices,
        h("button", { type: "button", id: "preview-reload", onclick: () => this.reload() }, "Reload"),
        h("a", { href: p.url, target: "_blank", rel: "noopener" }, "Open in a new tab")),
      h("p", { class: "muted preview-source", dataset: { source: p.source } }, sourceText(p)),
      p.source === "draft" && this.template !== "static"
        ? h("p", { class: "note" }, "This app needs a build or a chat: the live preview starts with the app's first run.")
        : null,
      this.output,
      h("div", { class: "preview-stage" }, this.frame));
  }

  modeButton(mode, label) {
    return h("button", { type: "button", id: `preview-mode-${mode}`, "aria-pressed": String(this.mode === mode),
      onclick: () => { this.mode = mode; this.current = null; this.refresh(); } }, label);
  }

  resize(id, width, button) {
    this.device = id;
    this.frame.style.width = width;
    for (const b of button.parentElement.children) b.setAttribute("aria-pressed", String(b === button));
  }

  reload() {
    if (this.frame) this.frame.src = this.current.url;
  }

  /** Follows the dev server's state once a second while the live preview is shown. */
  async poll() {
    clearTimeout(this.timer);
    if (!this.frame?.isConnected || this.current?.source !== "live") return;
    try {
      const s = await api("GET", `/admin/apps/${this.appId}/preview/live`);
      const restarted = s.restarts > 0 ? ` · restarted ${s.restarts} time${s.restarts === 1 ? "" : "s"} after a crash` : "";
      this.state.dataset.state = s.state;
      this.state.dataset.restarts = String(s.restarts);
      this.state.textContent = (STATES[s.state] || s.state) + restarted;
      this.output.hidden = !(s.state === "crashed" || s.restarts > 0) || !s.output.length;
      this.output.textContent = s.output.join("\n");
    } catch {
      // The next tick tries again; a signed-out page stops with the builder.
    }
    this.timer = setTimeout(() => this.poll(), 1000);
  }
}

function sourceText(p) {
  if (p.source === "live") return `The app's dev server, following the chat's workspace (draft revision ${p.revision} when opened)`;
  if (p.source === "build") {
    return `Built output of revision ${p.built_revision}${p.built_revision < p.revision ? ` (the draft is at ${p.revision}; the next run rebuilds it)` : ""}`;
  }
  return `Draft revision ${p.revision}`;
}
