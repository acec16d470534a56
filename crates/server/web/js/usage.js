// The app's usage panel: what its runs used and cost, summed by `GET /admin/usage?group_by=app`
// (a builder's own runs; an admin's everyone's), refreshed when a run ends.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { usageText } from "./timeline.js";

export class UsagePanel {
  constructor(root, appId) {
    this.root = root;
    this.appId = appId;
  }

  async refresh() {
    try {
      const report = await api("GET", "/admin/usage?group_by=app");
      const row = (report.rows || []).find((r) => r.key === this.appId);
      if (!row) {
        replace(this.root, h("p", { class: "muted" }, "No model calls yet."));
        return;
      }
      replace(this.root,
        h("p", { id: "app-usage" }, usageText(row)),
        h("p", { class: "muted" }, `${row.runs} run${row.runs === 1 ? "" : "s"}, ${row.model_calls} model call${row.model_calls === 1 ? "" : "s"}`));
    } catch (err) {
      replace(this.root, h("p", { class: "muted" }, `Usage unavailable: ${err.message}`));
    }
  }
}
