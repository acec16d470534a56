// The task timeline: one row per tool step with a plain-language intent, chips for the
// paths it touched, its status and a shimmer while active; verification steps fold their
// output under the row.
import { h, replace } from "./dom.js";

const PATH_KEYS = ["path", "filePath", "from_path", "to_path"];

/** "Editing src/App.tsx", "Running npm run build"… */
export function intent(tool, input = {}) {
  const p = input.path || input.filePath || "";
  const where = p && p !== "." ? ` ${p}` : "";
  switch (tool) {
    case "write": return `Writing${where}`;
    case "edit": case "apply_patch": case "patch": case "multiedit": return p ? `Editing ${p}` : "Editing files";
    case "read": return `Reading${where}`;
    case "list": return p && p !== "." ? `Listing ${p}` : "Listing the project";
    case "search": case "grep": return `Searching for “${input.pattern || input.query || ""}”`;
    case "glob": return `Finding files ${input.pattern || ""}`.trim();
    case "delete": return `Deleting${where}`;
    case "rename": return `Renaming ${input.from_path || "?"} → ${input.to_path || "?"}`;
    case "run_command": case "bash": return `Running ${input.command || input.cmd || "a command"}`;
    case "coding_agent_get_agent_integration_contract":
    case "coding_agent_describe_selected_agent_contract": return "Reading the agent contract";
    default: return `Using ${tool}`;
  }
}

/** Paths a tool touched: the event's `paths` plus the conventional input fields. */
export function touched(payload) {
  const out = new Set(payload.paths || []);
  const input = payload.input || {};
  for (const key of PATH_KEYS) if (typeof input[key] === "string" && input[key] !== ".") out.add(input[key]);
  return [...out];
}

const pretty = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

export class Timeline {
  constructor(list, header) {
    this.list = list;
    this.header = header;
    this.rows = new Map();
  }

  /** Starts a fresh timeline for a run. */
  reset(run) {
    this.rows.clear();
    replace(this.list);
    if (!run) {
      replace(this.header, h("p", { class: "muted" }, "No run yet."));
      return;
    }
    this.status(run, run.status);
  }

  status(run, status) {
    replace(
      this.header,
      // Only the current run's badge carries the id (earlier turns' steps can be open too).
      h("span", { class: `badge status-${status}`, id: this.header.id === "run-info" ? "run-status" : null, dataset: { status, run: run.run_id } }, status),
      " ",
      h("span", { class: "run-model", title: "The model this run is pinned to" }, `Model: ${run.resolved_model_id}`),
      run.requested_model_id === "auto" ? h("span", { class: "muted" }, " (Auto)") : null,
      " · ",
      h("span", { class: "run-engine" }, `Engine: ${run.engine}`),
    );
  }

  onEvent(ev) {
    const p = ev.payload || {};
    switch (ev.event) {
      case "tool.started":
        this.row(p.tool_call_id, intent(p.tool, p.input), touched(p), "running", pretty(p.input));
        break;
      case "tool.completed":
        this.finish(p.tool_call_id, "done", touched(p), p.output, p.ms);
        break;
      case "tool.failed":
        this.finish(p.tool_call_id, "failed", touched(p), p.error ? `${p.error.code}: ${p.error.message}` : "", p.ms);
        break;
      case "verification.started":
        this.row(`verify-${ev.seq}`, `Verifying: ${p.command}`, [], "running", null, true);
        this.verifying = `verify-${ev.seq}`;
        break;
      case "verification.completed":
      case "verification.failed":
        if (this.verifying) {
          this.finish(this.verifying, ev.event.endsWith("completed") ? "done" : "failed", [],
            `exit ${p.exit_code}\n${p.output || ""}`, p.ms);
          this.verifying = null;
        }
        break;
      case "sandbox.ready":
        this.milestone(p.reused ? `Sandbox reused · ${p.ms} ms` : `Sandbox ready · ${p.ms} ms`);
        break;
      case "draft.synced": {
        const n = (k) => (p[k] || []).length;
        this.milestone(`Draft revision ${p.revision}: ${n("added")} added, ${n("modified")} modified, ${n("deleted")} deleted`);
        break;
      }
      case "run.failed":
        this.milestone(`Failed — ${p.error ? `${p.error.code}: ${p.error.message}` : "unknown error"}`, "failed");
        break;
      case "run.paused":
        this.milestone(`Paused (${p.reason || "step limit"})`);
        break;
      case "context.compacted":
        this.milestone(`Earlier steps summarised to stay inside the model's window (${p.replaced_messages} messages, compaction ${p.compaction})`);
        break;
      default:
    }
    // The terminal event carries the run's usage totals: shown once, last.
    if (p.usage && ev.event.startsWith("run.")) this.milestone(usageText(p.usage), "usage");
  }

  /** A one-line note between steps: the sandbox, the sync, how the run ended. */
  milestone(text, kind = "") {
    this.list.append(h("li", { class: `milestone ${kind}` }, text));
  }

  row(id, text, paths, status, input, verification = false) {
    if (this.rows.has(id)) return;
    const chips = h("ul", { class: "chips", "aria-label": "Paths touched" });
    const state = h("span", { class: "state" }, label(status));
    const details = h("details", { class: "fold" }, h("summary", {}, verification ? "Output" : "Details"));
    if (input) details.append(h("pre", { class: "io input" }, input));
    const el = h("li", { class: `step ${verification ? "verification" : "tool"}`, dataset: { status, id } },
      h("div", { class: "line" }, h("span", { class: "intent" }, text), state), chips, details);
    this.rows.set(id, { el, chips, state, details, paths: new Set() });
    this.addPaths(id, paths);
    this.list.append(el);
    this.markActive();
    el.scrollIntoView({ block: "nearest" });
  }

  finish(id, status, paths, output, ms) {
    const row = this.rows.get(id);
    if (!row) return;
    row.el.dataset.status = status;
    row.state.textContent = label(status) + (ms !== undefined ? ` · ${ms} ms` : "");
    this.addPaths(id, paths);
    if (output !== undefined && output !== null && output !== "") {
      row.details.append(h("pre", { class: `io output ${status}` }, pretty(output)));
    }
    this.markActive();
  }

  addPaths(id, paths) {
    const row = this.rows.get(id);
    for (const path of paths) {
      if (row.paths.has(path)) continue;
      row.paths.add(path);
      row.chips.append(h("li", { class: "chip", title: path }, path));
    }
  }

  /** The shimmer goes on the newest running row only. */
  markActive() {
    const rows = [...this.rows.values()];
    rows.forEach((r) => r.el.classList.remove("active"));
    const running = rows.filter((r) => r.el.dataset.status === "running").pop();
    if (running) running.el.classList.add("active");
  }

  /** A run that ended leaves no row spinning. */
  settle(status) {
    for (const row of this.rows.values()) {
      if (row.el.dataset.status === "running") {
        row.el.dataset.status = status === "cancelled" ? "cancelled" : "failed";
        row.state.textContent = label(row.el.dataset.status);
      }
    }
    this.markActive();
  }
}

/** A run's tokens and cost, e.g. `1,234 tokens (1,000 in, 234 out) · $0.0042`. */
export function usageText(u) {
  const n = (v) => Number(v || 0).toLocaleString("en-US");
  const total = (u.input_tokens || 0) + (u.output_tokens || 0) + (u.cache_read_tokens || 0) + (u.cache_write_tokens || 0);
  const cached = u.cache_read_tokens ? `, ${n(u.cache_read_tokens)} cached` : "";
  const estimated = u.estimated_calls ? " (partly estimated)" : "";
  return `${n(total)} tokens (${n(u.input_tokens)} in, ${n(u.output_tokens)} out${cached}) · $${(Number(u.cost_micro_usd || 0) / 1e6).toFixed(4)}${estimated}`;
}

function label(status) {
  return { running: "Running…", done: "Done", failed: "Failed", cancelled: "Cancelled" }[status] || status;
}
