// Seeded by draftsmith; rewritten before every run. Dependency-free on purpose: OpenCode
// loads it without installing `@opencode-ai/plugin`, so runs work with no network.
import { readFile } from "node:fs/promises"

const CONTRACT = new URL("../../.cache/opencode/selected_agent_contract.json", import.meta.url)

export default {
  description:
    "Returns the full integration contract of the runtime agent selected for this app: the agent, " +
    "its resolved tools with input and output JSON Schemas and UI hints, and diagnostics. Call it " +
    "before writing code that calls the agent or renders its tool output.",
  args: {},
  async execute() {
    try {
      return await readFile(CONTRACT, "utf8")
    } catch (error) {
      return JSON.stringify({
        ok: false,
        error: {
          code: "CODING_AGENT_TOOL_FAILED",
          message: `the selected agent contract could not be read: ${error}`,
        },
      })
    }
  },
}
