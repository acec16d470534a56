// Seeded by draftsmith; rewritten before every run. Dependency-free on purpose: OpenCode
// loads it without installing `@opencode-ai/plugin`, so runs work with no network.
import { readFile } from "node:fs/promises"

const CONTRACT = new URL("../../.cache/opencode/selected_agent_contract.json", import.meta.url)
const MAX_DESCRIPTION = 300
const MAX_FIELDS = 20
const MAX_DEPTH = 3

function shorten(text: unknown, max: number): string {
  const s = typeof text === "string" ? text : ""
  return s.length <= max ? s : `${s.slice(0, max)}…`
}

function fields(schema: any): string[] {
  const out: string[] = []
  let total = 0
  const walk = (node: any, prefix: string, depth: number) => {
    const props = node && typeof node === "object" ? node.properties : undefined
    if (!props || typeof props !== "object") return
    const required: string[] = Array.isArray(node.required) ? node.required : []
    for (const [name, child] of Object.entries<any>(props)) {
      total += 1
      const path = prefix ? `${prefix}.${name}` : name
      const type = child && typeof child === "object" ? child.type ?? "any" : "any"
      out.push(`${path}: ${Array.isArray(type) ? type.join("|") : type}${required.includes(name) ? " (required)" : ""}`)
      if (depth < MAX_DEPTH) walk(child, path, depth + 1)
    }
  }
  walk(schema, "", 1)
  if (total > MAX_FIELDS) return [...out.slice(0, MAX_FIELDS), `… ${total - MAX_FIELDS} more fields truncated`]
  return out
}

export default {
  description:
    "Describes the runtime agent selected for this app in a few lines: its name and purpose, " +
    "whether it is ready to run, and each tool's input and output fields. Use it for a quick " +
    "overview; call coding_agent_get_agent_integration_contract for the full schemas.",
  args: {},
  async execute() {
    let contract: any
    try {
      contract = JSON.parse(await readFile(CONTRACT, "utf8"))
    } catch (error) {
      return JSON.stringify({
        ok: false,
        error: {
          code: "CODING_AGENT_TOOL_FAILED",
          message: `the selected agent contract could not be read: ${error}`,
        },
      })
    }
    if (!contract || !contract.agent) {
      return JSON.stringify({ agent: null, runtime_ready: false, tools: [], note: "this app has no selected runtime agent" })
    }
    const tools = Array.isArray(contract.tools) ? contract.tools : []
    const diagnostics = Array.isArray(contract.diagnostics) ? contract.diagnostics : []
    return JSON.stringify({
      agent: {
        id: contract.agent.id,
        name: contract.agent.name,
        description: shorten(contract.agent.description, MAX_DESCRIPTION),
        tool_count: tools.length,
      },
      runtime_ready: Boolean(contract.runtime_ready),
      tools: tools.map((tool: any) => ({
        name: tool.name,
        description: shorten(tool.description, MAX_DESCRIPTION),
        input_fields: fields(tool.input_schema),
        output_fields: fields(tool.output_schema),
        ui_hints: (Array.isArray(tool.ui_hints) ? tool.ui_hints : []).map((h: any) => ({
          location: h.location,
          kind: h["x-ui"]?.kind,
        })),
      })),
      unresolved_tools: diagnostics
        .filter((d: any) => d.code === "unresolved_tool")
        .map((d: any) => d.location)
        .filter(Boolean),
    })
  },
}
