// The draft: a file tree and a read-only viewer, and a live preview of the app in a
// sandboxed iframe (its built output when the sandbox has one, else the draft's files).
import { api, fileText } from "./api.js";
import { h, replace } from "./dom.js";
import { codeBlock, langOf } from "./markdown.js";
import { showError } from "./notices.js";

export class DraftFiles {
  constructor(treeEl, viewerEl, appId) {
    this.treeEl = treeEl;
    this.viewerEl = viewerEl;
    this.appId = appId;
    this.open = null;
  }

  async refresh() {
    let draft;
    try {
      draft = await api("GET", `/admin/apps/${this.appId}/draft`);
    } catch (err) {
      showError(err, "Loading files");
      return;
    }
    this.revision = draft.revision;
    replace(this.treeEl,
      h("p", { class: "muted", id: "draft-revision", dataset: { revision: draft.revision } }, `Revision ${draft.revision} · ${draft.files.length} files`),
      tree(build(draft.files.map((f) => f.path)), (path) => this.show(path)));
    if (this.open && draft.files.some((f) => f.path === this.open)) await this.show(this.open);
  }

  async show(path) {
    this.open = path;
    try {
      const text = await fileText(this.appId, path);
      replace(this.viewerEl, h("h3", { class: "viewer-path" }, path), codeBlock(text, langOf(path)));
    } catch (err) {
      showError(err, `Opening ${path}`);
    }
  }
}

function build(paths) {
  const root = {};
  for (const path of paths.sort()) {
    let node = root;
    const parts = path.split("/");
    parts.forEach((part, i) => {
      if (i === parts.length - 1) node[part] = path;
      else node = node[part] = typeof node[part] === "object" ? node[part] : {};
    });
  }
  return root;
}

function tree(node, onOpen) {
  const entries = Object.entries(node).sort(([a, av], [b, bv]) =>
    (typeof av === "object") === (typeof bv === "object") ? a.localeCompare(b) : typeof av === "object" ? -1 : 1);
  return h("ul", { class: "tree", role: "list" }, entries.map(([name, value]) =>
    typeof value === "object"
      ? h("li", { class: "dir" }, h("details", { open: true }, h("summary", {}, `${name}/`), tree(value, onOpen)))
      : h("li", { class: "file" }, h("button", { type: "button", class: "link", "aria-label": `Open ${value}`, onclick: () => onOpen(value) }, name))));
}

export class Preview {
  constructor(el, app) {
    this.el = el;
    this.appId = app.id;
    this.template = app.template;
  }

  async refresh() {
    try {
      const p = await api("POST", `/admin/apps/${this.appId}/preview`);
      replace(this.el,
        h("p", { class: "muted preview-source", dataset: { source: p.source } },
          p.source === "build"
            ? `Built output of revision ${p.built_revision}${p.built_revision < p.revision ? ` (the draft is at ${p.revision}; the next run rebuilds it)` : ""}`
            : `Draft revision ${p.revision}`,
          " · ",
          h("a", { href: p.url, target: "_blank", rel: "noopener" }, "Open in a new tab")),
        p.source === "draft" && this.template !== "static"
          ? h("p", { class: "note" }, "This app needs a build: the preview shows the sandbox's built output once a run's verification has built it.")
          : null,
        h("iframe", { class: "preview", title: "Live preview of the app", src: p.url, sandbox: "allow-scripts allow-forms allow-popups allow-modals" }));
    } catch (err) {
      replace(this.el, h("p", { class: "muted" }, "No preview."));
      showError(err, "Preview");
    }
  }
}
