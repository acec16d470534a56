// The model picker (Auto plus the registry; unavailable models disabled with the reason)
// and the capabilities summary, so nobody has to guess what the agent may do.
import { h, replace } from "./dom.js";

export function modelPicker(select, models) {
  replace(select,
    h("option", { value: "auto" }, `Auto${models.auto ? ` (${models.auto})` : ""}`),
    models.models.map((m) =>
      h("option", { value: m.id, disabled: !m.available, title: m.unavailable_reason || "" },
        m.available ? m.id : `${m.id} — unavailable: ${m.unavailable_reason || "not configured"}`)));
  const saved = localStorage.getItem("draftsmith.model");
  if (saved && [...select.options].some((o) => o.value === saved && !o.disabled)) select.value = saved;
  select.onchange = () => localStorage.setItem("draftsmith.model", select.value);
}

export function capabilitiesSummary(el, caps) {
  const oc = caps.opencode_policy;
  replace(el,
    h("dl", { class: "caps" },
      h("dt", {}, "Default engine"), h("dd", { id: "cap-engine" }, caps.default_engine),
      h("dt", {}, "Native engine"), h("dd", {}, caps.native_enabled ? "enabled" : "disabled"),
      h("dt", {}, "Sandbox isolation"), h("dd", {}, caps.sandbox_isolation),
      h("dt", {}, "Sandbox network"), h("dd", {}, caps.sandbox_egress === "proxy"
        ? `proxy: ${(caps.sandbox_egress_allow || []).join(", ")}` : caps.sandbox_egress),
      h("dt", {}, `Native tools (${caps.native_tool_count})`),
      h("dd", {}, h("ul", { class: "chips", "aria-label": "Native tools" }, caps.native_tools.map((t) => h("li", { class: "chip", title: t.function_name }, t.name)))),
      h("dt", {}, "OpenCode"),
      h("dd", {}, oc.available ? "available" : `unavailable: ${oc.unavailable_reason || "not installed"}`),
      h("dt", {}, "OpenCode tools"), h("dd", {}, oc.delegated_tools.join(", ") || "none"),
      oc.disabled_tools.length ? [h("dt", {}, "Disabled in OpenCode"), h("dd", {}, oc.disabled_tools.join(", "))] : null,
      h("dt", {}, "Project tools"), h("dd", {}, oc.project_custom_tools.join(", ") || "none"),
      h("dt", {}, "Permissions"), h("dd", {}, oc.permission_model)));
}
