//! The live preview in Chromium through the real proxy: hot reload keeps the page (a marker
//! on its `window` survives) through a run's write of `src/App.jsx`, a CSS edit and draft
//! edits through the API; Vite's overlay shows a syntax error and goes with its fix; a
//! crashed dev server is restarted and the builder says so. Needs the npm registry.

use std::path::Path;

use draftsmith_sandbox::SandboxId;
use serde_json::json;

use super::Ui;

const SCRIPT: &str = include_str!("../../fixtures/ui/live.json");

/// Writes a draft file through the API (as another tab or a tool would).
async fn put(ui: &Ui, app: &str, path: &str, content: &str) {
    let answer = ui
        .server
        .admin()
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{app}/draft/files/{path}"),
        )
        .header("if-match", "*")
        .body(content.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// Waits, inside the preview's frame, for `condition` with the page's marker still there.
async fn in_page(ui: &Ui, what: &str, condition: &str) {
    let b = &ui.browser;
    let script = format!("return window.__kept === 'kept' && ({condition})");
    b.wait_in_frame("iframe.preview", what, &script, json!([]))
        .await;
}

fn app_jsx(heading: &str) -> String {
    format!(
        "export default function App() {{\n  return (\n    <main className=\"app\">\n      <h1>{heading}</h1>\n    </main>\n  );\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_preview_hot_reloads_shows_errors_and_survives_a_crash() {
    let ui = Ui::scripted(SCRIPT, false).await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Live", "vite-react").await;
    ui.send("ZQUICK hello").await;
    ui.wait_status("completed").await;
    b.wait_css("#preview-state[data-state=live]").await;
    // The mark that tells a hot reload from a new page is set in the same call that sees
    // the page, so it cannot land in an iframe that a re-render has just replaced.
    b.wait_in_frame(
        "iframe.preview",
        "the app to render",
        "const h = document.querySelector('main.app h1'); \
         if (h && h.textContent === 'My App') { window.__kept = 'kept'; return true; } return false",
        json!([]),
    )
    .await;
    b.screenshot("20-live-preview").await;

    // A run's write of src/App.jsx: the page changes in place.
    ui.send("ZAPP change the heading").await;
    ui.wait_status("completed").await;
    in_page(
        &ui,
        "the agent's heading, hot",
        "document.querySelector('main.app h1')?.textContent === 'Changed by the agent'",
    )
    .await;

    // A CSS edit applies without a reload.
    let css = "h1 { color: rgb(1, 2, 3); }\n";
    put(&ui, &app, "src/index.css", css).await;
    in_page(
        &ui,
        "the new colour",
        "getComputedStyle(document.querySelector('main.app h1')).color === 'rgb(1, 2, 3)'",
    )
    .await;

    // A syntax error shows Vite's overlay; the fix clears it.
    put(
        &ui,
        &app,
        "src/App.jsx",
        "export default function App() {\n  return (<main>\n}\n",
    )
    .await;
    in_page(
        &ui,
        "Vite's error overlay",
        "!!document.querySelector('vite-error-overlay')",
    )
    .await;
    b.screenshot("21-live-overlay").await;
    put(&ui, &app, "src/App.jsx", &app_jsx("Fixed through the API")).await;
    in_page(
        &ui,
        "the overlay gone and the draft edit shown",
        "!document.querySelector('vite-error-overlay') && document.querySelector('main.app h1')?.textContent === 'Fixed through the API'",
    )
    .await;

    // The dev server is killed: it is restarted and the builder says so.
    let run = &ui.runs(&app).await[0];
    let workspace = ui
        .server
        .state
        .runner
        .controller()
        .workspace_dir(&SandboxId::for_chat(run.chat_session_id))
        .unwrap();
    let node: Vec<u32> = draftsmith_process::pids_under(&workspace)
        .into_iter()
        .filter(|pid| comm(*pid) == "node")
        .collect();
    assert!(!node.is_empty(), "the dev server runs in the workspace");
    for pid in node {
        draftsmith_process::kill_pid(pid);
    }
    b.wait_css("#preview-state[data-state=live][data-restarts='1']")
        .await;
    assert!(b.text("#preview-state").await.contains("restarted 1 time"));
    b.wait_in_frame(
        "iframe.preview",
        "the page back after the restart",
        "const h = document.querySelector('main.app h1'); return h && h.textContent === 'Fixed through the API'",
        json!([]),
    )
    .await;
    b.click("#device-phone").await;
    b.screenshot("22-live-restarted-phone").await;
    ui.browser.quit().await;
}

/// The process name of `pid`.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}
