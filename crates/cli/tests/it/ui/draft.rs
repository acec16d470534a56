//! The model picker, the capabilities summary, and checkpoints: diff, restore with a
//! confirmation that says what changes, the files refreshed afterwards.

use draftsmith_core::api::Draft;
use draftsmith_sandbox::SandboxId;
use serde_json::json;

use super::Ui;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_a_model_see_capabilities_and_restore_a_checkpoint() {
    let ui = Ui::start_with(true).await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Checkpoints", "static").await;

    // Auto plus the registry; the model without a key is disabled and says why.
    let options = b
        .js(
            "return [...document.querySelectorAll('#model option')].map(o => [o.value, o.disabled, o.textContent])",
            json!([]),
        )
        .await;
    let options = options.as_array().unwrap();
    assert_eq!(options[0], json!(["auto", false, "Auto (mock/coder)"]));
    let values: Vec<&str> = options.iter().map(|o| o[0].as_str().unwrap()).collect();
    assert_eq!(
        values,
        [
            "auto",
            "mock/coder",
            "mock/other",
            "mock-anthropic/claude",
            "offline/big"
        ]
    );
    let offline = options.last().unwrap();
    assert_eq!(offline[1], true);
    assert!(
        offline[2].as_str().unwrap().contains("unavailable"),
        "{offline}"
    );

    // The capabilities summary.
    b.click("#tab-caps").await;
    b.wait_css("#cap-engine").await;
    assert_eq!(b.text("#cap-engine").await, "native");
    let caps = b.text("#capabilities").await;
    for expected in [
        "Native tools (11)",
        "apply_patch",
        "run_command",
        "OpenCode",
        "Permissions",
    ] {
        assert!(caps.contains(expected), "{expected} missing from {caps}");
    }
    b.screenshot("09-capabilities").await;

    // Pick a model: the run is pinned to it and says so.
    b.js(
        "const s = document.querySelector('#model'); s.value = 'mock/other'; s.dispatchEvent(new Event('change'))",
        json!([]),
    )
    .await;
    ui.send("ZBUILD make the heading say hello").await;
    b.wait_for(
        "the pinned model",
        "return document.querySelector('#run-info .run-model')?.textContent === 'Model: mock/other'",
        json!([]),
    )
    .await;
    ui.wait_status("completed").await;
    // Verification is a row of its own, its output folded under it.
    let verify = b
        .js(
            "const r = [...document.querySelectorAll('#timeline li.step.verification')].pop(); \
             return r && [r.querySelector('.intent').textContent, r.dataset.status, r.querySelector('details').open, r.querySelector('details .output').textContent]",
            json!([]),
        )
        .await;
    assert_eq!(verify[0], "Verifying: node --check script.js");
    assert_eq!(verify[1], "done");
    assert_eq!(verify[2], false);
    assert!(
        verify[3].as_str().unwrap().starts_with("exit 0"),
        "{verify}"
    );
    assert_eq!(ui.runs(&app).await[0].resolved_model_id, "mock/other");
    assert_eq!(ui.runs(&app).await[0].requested_model_id, "mock/other");

    // Checkpoints: kind, label, time and files changed.
    b.click("#tab-checkpoints").await;
    b.wait_css("li.checkpoint[data-kind=post_run]").await;
    let post = b
        .text("li.checkpoint[data-kind=post_run] .files-changed")
        .await;
    assert_eq!(post, "1 file changed (~index.html)");
    assert!(
        !b.text("li.checkpoint[data-kind=post_run] time")
            .await
            .is_empty()
    );
    // The diff view from before the run to now.
    b.click("li.checkpoint[data-kind=pre_run] button[aria-label^='Show the diff']")
        .await;
    b.wait_for(
        "the diff",
        "return document.querySelector('#checkpoint-diff').textContent.includes('+      <h1 id=\"greeting\">Hello from the agent</h1>')",
        json!([]),
    )
    .await;
    b.screenshot("10-checkpoint-diff").await;
    // Restore asks first, saying what will change; cancelling changes nothing.
    b.click("li.checkpoint[data-kind=pre_run] button.restore")
        .await;
    b.wait_css("dialog.confirm[open]").await;
    assert_eq!(
        b.text("dialog.confirm .consequences").await,
        "Revert changes to index.html"
    );
    b.screenshot("11-restore-confirm").await;
    b.click("dialog.confirm .confirm-cancel").await;
    b.wait_for(
        "the dialog to close",
        "return !document.querySelector('dialog.confirm')",
        json!([]),
    )
    .await;
    let draft: Draft = ui
        .server
        .admin()
        .get(&format!("/admin/apps/{app}/draft"), 200)
        .await;
    assert_eq!(draft.revision, 2);
    // Confirmed: a new revision with the old content, and the views refresh.
    b.click("li.checkpoint[data-kind=pre_run] button.restore")
        .await;
    b.click("dialog.confirm[open] .confirm-ok").await;
    b.wait_for(
        "the restore note",
        "return [...document.querySelectorAll('.note')].some(n => n.textContent.startsWith('Restored Before run'))",
        json!([]),
    )
    .await;
    b.wait_css("li.checkpoint[data-kind=restore]").await;
    b.wait_css("#draft-revision[data-revision='3']").await;
    let (index, revision) = ui
        .server
        .admin()
        .get_bytes(&format!("/admin/apps/{app}/draft/files/index.html"))
        .await;
    assert_eq!(revision, 3);
    assert!(
        !String::from_utf8(index)
            .unwrap()
            .contains("Hello from the agent")
    );
    b.screenshot("12-restored").await;
    // Reverting the run now conflicts (the draft moved on): the API's error is shown.
    b.click("li.checkpoint[data-kind=post_run] button.revert")
        .await;
    b.click("dialog.confirm[open] .confirm-ok").await;
    b.wait_css("#errors .error[data-code=CODING_AGENT_REVISION_CONFLICT]")
        .await;
    assert!(
        b.text("#errors")
            .await
            .contains("the draft changed after this run")
    );
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_runs_a_built_vite_app() {
    let ui = Ui::start().await;
    let b = &ui.browser;
    ui.sign_in().await;
    let app = ui.create_app("Vite", "vite-react").await;
    // Before any build, the preview says the app needs one.
    b.wait_css(".preview-source[data-source=draft]").await;
    ui.send("ZQUICK hello").await;
    ui.wait_status("completed").await;
    // What `vite build` with the template's relative base writes: a module script with
    // `crossorigin`, which a sandboxed (opaque-origin) page fetches with CORS.
    let run = &ui.runs(&app).await[0];
    let sandbox = SandboxId::for_chat(run.chat_session_id);
    let workspace = ui
        .server
        .state
        .runner
        .controller()
        .workspace_dir(&sandbox)
        .unwrap();
    std::fs::create_dir_all(workspace.join("dist/assets")).unwrap();
    std::fs::write(
        workspace.join("dist/index.html"),
        "<!doctype html><html><head><script type=\"module\" crossorigin src=\"./assets/index-x.js\"></script>\
         <link rel=\"stylesheet\" crossorigin href=\"./assets/index-x.css\"></head><body><div id=\"root\"></div></body></html>",
    )
    .unwrap();
    std::fs::write(
        workspace.join("dist/assets/index-x.js"),
        "document.getElementById('root').textContent = 'Built and running';",
    )
    .unwrap();
    std::fs::write(
        workspace.join("dist/assets/index-x.css"),
        "#root { color: rebeccapurple; }",
    )
    .unwrap();
    // The next refresh (after any change) picks the build up.
    b.click("#tab-checkpoints").await;
    b.click("li.checkpoint[data-kind=pre_run] button.restore")
        .await;
    b.click("dialog.confirm[open] .confirm-ok").await;
    b.click("#tab-preview").await;
    // The built output stays a choice beside the live dev server.
    b.click("#preview-mode-build").await;
    b.wait_css(".preview-source[data-source=build]").await;
    b.wait_in_frame(
        "iframe.preview",
        "the built app to run",
        "const r = document.getElementById('root'); return r && r.textContent === 'Built and running' && getComputedStyle(r).color === 'rgb(102, 51, 153)'",
        json!([]),
    )
    .await;
    b.screenshot("14-vite-preview").await;
    ui.finish().await;
}
