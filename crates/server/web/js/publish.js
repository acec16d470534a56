// Publishing: the Publish button (a release of the current draft, live at once), the live
// URL, the release list (revision, time, size, who) with "Make live" for any of them, and
// Unpublish. A failed build shows its output and publishes nothing.
import { api } from "./api.js";
import { h, replace, timeEl } from "./dom.js";
import { showError } from "./notices.js";

const size = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

export class Publisher {
  constructor(el, appId) {
    this.el = el;
    this.appId = appId;
    this.busy = false;
    this.failure = null;
  }

  async refresh() {
    let publication, list;
    try {
      [publication, list] = await Promise.all([
        api("GET", `/admin/apps/${this.appId}/publication`),
        api("GET", `/admin/apps/${this.appId}/releases`),
      ]);
    } catch (err) {
      showError(err, "Loading releases");
      return;
    }
    const live = publication.release_id;
    replace(this.el,
      h("div", { class: "publish-head" },
        h("button", { type: "button", id: "publish", class: "primary", disabled: this.busy, onclick: () => this.publish() },
          this.busy ? "Publishing…" : "Publish"),
        live
          ? h("span", { id: "published-url" }, "Live at ",
            h("a", { href: publication.path, target: "_blank", rel: "noopener" }, location.origin + publication.path))
          : h("span", { id: "published-url", class: "muted" }, "Not published"),
        live ? h("button", { type: "button", id: "unpublish", class: "danger", onclick: () => this.unpublish() }, "Unpublish") : null),
      h("p", { class: "muted", id: "publish-status", "aria-live": "polite" },
        this.busy ? "Building a release of the current draft…" : publication.visibility === "private" ? "Private: visitors need the access key." : ""),
      this.failure
        ? h("section", { id: "publish-failure", class: "publish-failure", "aria-label": "Build output" },
          h("h3", {}, this.failure.message),
          h("pre", { class: "output" }, this.failure.details?.output || ""))
        : null,
      h("ol", { class: "releases", id: "releases", "aria-label": "Releases" },
        list.releases.map((r) => this.row(r))));
  }

  row(r) {
    return h("li", { class: `release${r.live ? " live" : ""}`, dataset: { id: r.id, number: r.number, live: String(r.live) } },
      h("div", { class: "line" },
        h("strong", {}, `#${r.number}`),
        h("span", {}, `revision ${r.revision}`),
        h("span", { class: "muted" }, `${r.file_count} files, ${size(r.size)}`),
        h("span", { class: "muted" }, r.created_by),
        timeEl(r.created_at),
        r.live ? h("span", { class: "badge" }, "live") : null),
      r.live ? null : h("div", { class: "actions" },
        h("button", { type: "button", class: "promote", "aria-label": `Make release ${r.number} live`, onclick: () => this.promote(r) }, "Make live")));
  }

  async publish() {
    this.busy = true;
    this.failure = null;
    await this.refresh();
    try {
      await api("POST", `/admin/apps/${this.appId}/releases`, {});
    } catch (err) {
      if (err.code === "CODING_AGENT_VERIFICATION_FAILED") this.failure = err;
      else showError(err, "Publish");
    }
    this.busy = false;
    await this.refresh();
  }

  async promote(r) {
    try {
      await api("POST", `/admin/apps/${this.appId}/releases/${r.id}/promote`, {});
    } catch (err) {
      showError(err, "Make live");
    }
    await this.refresh();
  }

  async unpublish() {
    if (!confirm("Take the app offline? Its releases are kept.")) return;
    try {
      await api("DELETE", `/admin/apps/${this.appId}/publication`);
    } catch (err) {
      showError(err, "Unpublish");
    }
    await this.refresh();
  }
}
