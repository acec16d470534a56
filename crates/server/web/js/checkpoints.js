// Checkpoints: the list (kind, label, time, files changed), a diff view against the
// current draft, and restore / revert behind a confirmation that says what will change.
import { api, agent } from "./api.js";
import { h, replace, timeEl } from "./dom.js";
import { showError } from "./notices.js";
import { CHECKPOINT_KINDS } from "./contract.js";

// How each of core's kinds reads; a kind without a label here shows as spelled.
const LABELS = { pre_run: "Before run", post_run: "After run", restore: "Before restore" };
const KIND = Object.fromEntries(
  CHECKPOINT_KINDS.map((k) => [k, LABELS[k] || k.charAt(0).toUpperCase() + k.slice(1).replace(/_/g, " ")]),
);

export class Checkpoints {
  constructor(el, appId, onChanged, canWrite) {
    this.el = el;
    this.appId = appId;
    this.onChanged = onChanged;
    this.canWrite = canWrite;
  }

  // A page refreshes after its own restore and again on the app stream's draft.revised;
  // a list that has not changed keeps its rows, so a button under the pointer stays the
  // button that is clicked. Only the newest request renders.
  async refresh() {
    const asked = (this.asked = (this.asked || 0) + 1);
    let list;
    try {
      list = await api("GET", agent(this.appId, "checkpoints?limit=50"));
    } catch (err) {
      showError(err, "Loading checkpoints");
      return;
    }
    if (asked !== this.asked) return;
    const shown = JSON.stringify(list.checkpoints);
    if (shown === this.shown && this.diffBox) {
      // The draft may have moved on without a checkpoint: a diff against it is stale.
      replace(this.diffBox);
      return;
    }
    this.shown = shown;
    this.items = list.checkpoints;
    this.diffBox = h("div", { class: "diff", id: "checkpoint-diff", "aria-live": "polite" });
    replace(
      this.el,
      h("ol", { class: "checkpoints", "aria-label": "Checkpoints" },
        list.checkpoints.map((c) => this.row(c, this.diffBox, list.checkpoints))),
      this.diffBox,
    );
  }

  row(c, diffBox, all) {
    const ch = c.changes || { added: [], modified: [], deleted: [] };
    const count = ch.added.length + ch.modified.length + ch.deleted.length;
    const name = `${KIND[c.kind] || c.kind}${c.label ? `: ${c.label}` : ""}`;
    const preRun = c.kind === "post_run" && c.run_id ? all.find((x) => x.kind === "pre_run" && x.run_id === c.run_id) : null;
    return h("li", { class: `checkpoint kind-${c.kind}`, dataset: { id: c.id, kind: c.kind, revision: c.revision } },
      h("div", { class: "line" },
        h("span", { class: "kind" }, KIND[c.kind] || c.kind),
        h("span", { class: "label" }, c.label || `revision ${c.revision}`),
        timeEl(c.created_at)),
      h("div", { class: "muted files-changed" },
        `${count} file${count === 1 ? "" : "s"} changed`,
        count ? ` (${[...ch.added.map((p) => `+${p}`), ...ch.modified.map((p) => `~${p}`), ...ch.deleted.map((p) => `-${p}`)].slice(0, 6).join(", ")})` : ""),
      h("div", { class: "actions" },
        h("button", { type: "button", "aria-label": `Show the diff from ${name} to the current draft`, onclick: () => this.showDiff(c, diffBox) }, "Diff"),
        h("button", { type: "button", class: "restore", "aria-label": `Restore ${name}`, onclick: () => this.restore(c, name) }, "Restore"),
        preRun ? h("button", { type: "button", class: "revert", "aria-label": `Revert the run of ${name}`, onclick: () => this.revert(c, preRun) }, "Revert run") : null,
      ),
    );
  }

  async showDiff(c, box) {
    try {
      const d = await api("GET", agent(this.appId, `checkpoints/${c.id}/diff?against=current`));
      replace(box,
        h("h3", {}, `Changes since this checkpoint (${d.files.length} file${d.files.length === 1 ? "" : "s"})`),
        d.files.length ? null : h("p", { class: "muted" }, "The draft is the same as this checkpoint."),
        d.files.map((f) => h("section", { class: "file-diff" },
          h("h4", {}, `${f.change}: ${f.path}`),
          f.binary ? h("p", { class: "muted" }, "Binary file") : diffBlock(f.diff))));
      box.focus?.();
    } catch (err) {
      showError(err, "Diff");
    }
  }

  /** What restoring `c` does to the current draft, in words. */
  async consequences(c) {
    const d = await api("GET", agent(this.appId, `checkpoints/${c.id}/diff?against=current`));
    const by = (kind) => d.files.filter((f) => f.change === kind).map((f) => f.path);
    const lines = [];
    if (by("added").length) lines.push(`Remove ${by("added").join(", ")}`);
    if (by("deleted").length) lines.push(`Bring back ${by("deleted").join(", ")}`);
    if (by("modified").length) lines.push(`Revert changes to ${by("modified").join(", ")}`);
    return lines.length ? lines : ["No file changes (the draft already matches)."];
  }

  async restore(c, name) {
    if (!this.canWrite()) return showError({ code: "CODING_AGENT_RUN_ACTIVE", message: "wait for the run to end, or stop it, before restoring" });
    try {
      const lines = await this.consequences(c);
      const ok = await confirmDialog(`Restore “${name}” (revision ${c.revision})?`, lines, "Restore");
      if (!ok) return;
      const done = await api("POST", agent(this.appId, `checkpoints/${c.id}/restore`));
      this.onChanged(`Restored ${name}: the draft is now revision ${done.revision}.`);
    } catch (err) {
      showError(err, "Restore");
    }
  }

  async revert(post, pre) {
    if (!this.canWrite()) return showError({ code: "CODING_AGENT_RUN_ACTIVE", message: "wait for the run to end, or stop it, before reverting" });
    try {
      const lines = await this.consequences(pre);
      const ok = await confirmDialog("Revert this run's changes?", lines, "Revert run");
      if (!ok) return;
      const done = await api("POST", agent(this.appId, `runs/${post.run_id}/revert`), {});
      this.onChanged(`Reverted the run: the draft is now revision ${done.revision}.`);
    } catch (err) {
      showError(err, "Revert");
    }
  }
}

/** A unified diff with added, removed and hunk lines marked. */
function diffBlock(diff) {
  const kind = (line) => (line.startsWith("@@") ? "hunk" : line.startsWith("+++") || line.startsWith("---") ? "head" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "ctx");
  return h("pre", { class: "code diff-lines" }, h("code", {}, diff.split("\n").map((line) => h("span", { class: `dl ${kind(line)}` }, `${line}\n`))));
}

/** A modal <dialog> listing what will change; resolves true when confirmed. */
export function confirmDialog(title, lines, action) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, "This will:"),
      h("ul", { class: "consequences" }, lines.map((l) => h("li", {}, l))),
      h("p", { class: "muted" }, "The current draft is checkpointed first, so this can be undone."),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary confirm-ok", onclick: () => close(true) }, action),
        h("button", { type: "button", class: "confirm-cancel", onclick: () => close(false) }, "Cancel")));
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.addEventListener("cancel", () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}
