// A client generated from /openapi.json (openapi-typescript types + openapi-fetch), driving
// one run end to end: create an app, start a run, poll it to its end, read the draft.
// Every call is typed by the generated `paths`; `tsc --strict` checks it before it runs.
import createClient from "openapi-fetch";
import type { paths } from "./api.mjs";

// Node globals used here (the DOM library types the rest: fetch, Response, console).
declare const process: { env: Record<string, string | undefined> };

const base = process.env.DRAFTSMITH_URL ?? "";
const token = process.env.DRAFTSMITH_TOKEN ?? "";
const api = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${token}` } });

function must<T>(what: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${what}: ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

const app = must("create app", await api.POST("/admin/apps", { body: { name: "Typed client", template: "static" } }));
const started = must(
  "start run",
  await api.POST("/admin/apps/{app_id}/coding-agent/runs", {
    params: { path: { app_id: app.id } },
    body: { input: "Make it a demo shop", model_id: "auto" },
  }),
);
// 201 is a run; 202 (only with `when_busy: "queue"`) a queued prompt.
if (!("run_id" in started)) {
  throw new Error(`start run: queued as ${started.id}`);
}
const run = started;
let status: string = run.status;
for (let i = 0; i < 300 && !["completed", "failed", "cancelled", "paused"].includes(status); i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  const now = must(
    "poll run",
    await api.GET("/admin/apps/{app_id}/coding-agent/runs/{run_id}", {
      params: { path: { app_id: app.id, run_id: run.run_id } },
    }),
  );
  status = now.status;
}
const draft = must("read draft", await api.GET("/admin/apps/{app_id}/draft", { params: { path: { app_id: app.id } } }));
const runs = must(
  "list runs",
  await api.GET("/admin/apps/{app_id}/coding-agent/runs", {
    params: { path: { app_id: app.id }, query: { limit: 5 } },
  }),
);
const index = await api.GET("/admin/apps/{app_id}/draft/files/{path}", {
  params: { path: { app_id: app.id, path: "index.html" } },
  parseAs: "text",
});
console.log(
  JSON.stringify({
    app_id: app.id,
    run_id: run.run_id,
    status,
    revision: draft.revision,
    files: draft.files.map((f) => f.path),
    runs: runs.runs.length,
    index: index.data ?? "",
  }),
);
