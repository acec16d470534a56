// The draft: a file tree and a read-only viewer (the preview is `preview.js`).
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
