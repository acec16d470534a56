// The builder's static layout: the conversation (each run's steps folded into its turn)
// beside the main stage (the preview, and the draft's other views in tabs), with labelled
// controls; returns the elements the other modules fill.
import { h, replace } from "./dom.js";

export function layout(main, app) {
  const el = {};
  const keep = (name, node) => (el[name] = node);
  replace(main,
    h("section", { class: "builder", "aria-labelledby": "app-title" },
      h("header", { class: "app-head" },
        h("a", { href: "#/", class: "back" }, "← All apps"),
        h("h1", { id: "app-title" }, app.name),
        h("span", { class: "muted" }, `${app.template} · ${app.slug}`)),
      h("div", { class: "cols" },
        h("section", { class: "col chat-col", "aria-label": "Chat" },
          keep("sessions", h("nav", { class: "sessions-box", "aria-label": "Chat sessions" })),
          keep("chat", h("div", { id: "chat", class: "chat", role: "log", "aria-live": "polite", "aria-label": "Conversation" })),
          keep("queue", h("section", { id: "queue", class: "queue-box", "aria-label": "Prompt queue", hidden: true })),
          keep("composer", h("form", { id: "composer", class: "composer", "aria-label": "Send a prompt" },
            h("label", { for: "prompt" }, "Prompt"),
            keep("prompt", h("textarea", { id: "prompt", rows: 3, placeholder: "Describe a change… (Enter sends, Shift+Enter for a new line; paste or drop images and files)" })),
            keep("attached", h("ul", { id: "attached", class: "attached", "aria-label": "Attached files", hidden: true })),
            h("div", { class: "composer-row" },
              h("label", { class: "attach-label", title: "Attach images or text files" }, "Attach",
                keep("attach", h("input", { type: "file", id: "attach", multiple: true,
                  accept: "image/png,image/jpeg,image/webp,image/gif,text/plain,text/markdown,text/csv,application/json,.md,.csv,.txt,.json" }))),
              h("label", { for: "model" }, "Model"),
              keep("model", h("select", { id: "model" }, h("option", { value: "auto" }, "Auto"))),
              keep("send", h("button", { type: "submit", id: "send", class: "primary" }, "Send")),
              keep("steer", h("button", { type: "button", id: "steer", hidden: true, title: "Send to the running turn: the agent reads it at its next step" }, "Send now")),
              keep("stop", h("button", { type: "button", id: "stop", class: "danger", disabled: true }, "Stop")))))),
        keep("tabs", h("section", { class: "col side-col stage", "aria-label": "Preview and draft" },
          h("div", { role: "tablist", "aria-label": "Draft views" },
            tab("preview", "Preview", true), tab("files", "Files"), tab("checkpoints", "Checkpoints"), tab("publish", "Publish"), tab("usage", "Usage"), tab("caps", "Capabilities")),
          panel("preview", keep("preview", h("div", { id: "preview-box" })), true),
          panel("files", h("div", { class: "files" }, keep("tree", h("nav", { id: "tree", "aria-label": "Files" })), keep("viewer", h("div", { id: "viewer", class: "viewer" }, h("p", { class: "muted" }, "Pick a file to read it."))))),
          panel("checkpoints", keep("checkpoints", h("div", { id: "checkpoints" }))),
          panel("publish", keep("publish", h("div", { id: "publish-box" }))),
          panel("usage", keep("usage", h("div", { id: "usage-box" }))),
          panel("caps", keep("caps", h("div", { id: "capabilities" }))))))));
  return el;
}

function tab(id, label, selected = false) {
  return h("button", { type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`, "aria-selected": String(selected) }, label);
}

function panel(id, child, visible = false) {
  return h("div", { role: "tabpanel", id: `panel-${id}`, "aria-labelledby": `tab-${id}`, hidden: !visible, class: "panel" }, child);
}

/** Tabs: click, Enter, or the arrow keys; every tab stays in the Tab order. */
export function tabs(root) {
  const all = [...root.querySelectorAll('[role="tab"]')];
  const select = (t) => {
    for (const other of all) {
      const on = other === t;
      other.setAttribute("aria-selected", String(on));
      document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
    }
    t.focus();
  };
  for (const t of all) {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", (e) => {
      const i = all.indexOf(t);
      if (e.key === "ArrowRight") select(all[(i + 1) % all.length]);
      if (e.key === "ArrowLeft") select(all[(i - 1 + all.length) % all.length]);
    });
  }
}
