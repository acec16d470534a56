//! `draftsmith run`: creates a run through the API, shows its progress, and exits 0 only
//! when the run completes.

use draftsmith_testkit::{StoreKind, TestServer};

use crate::runs::{MULTI_STEP, new_app};

async fn run_cli(server: &TestServer, app: &str, prompt: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["run", "--app", app, prompt];
    args.extend_from_slice(extra);
    crate::support::cli(&server.base_url, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_shows_progress_and_exits_zero_on_completion() {
    let server = TestServer::with_script(StoreKind::Sqlite, MULTI_STEP).await;
    let app = new_app(&server.admin(), "static").await;
    let (code, text) = run_cli(&server, &app.slug, "Add a greeting", &[]).await;
    assert_eq!(code, 0, "{text}");
    for expected in [
        "Let me see what is here.",
        "▸ write src/Hello.jsx",
        "✓ write",
        "draft revision 2",
        "✓ completed",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("SECRET-REASONING"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_non_zero_when_the_run_does_not_complete() {
    let server = TestServer::with_script(
        StoreKind::Sqlite,
        include_str!("../fixtures/scripts/http_400.json"),
    )
    .await;
    let app = new_app(&server.admin(), "static").await;
    let (code, text) = run_cli(&server, &app.id.to_string(), "fail", &[]).await;
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("CODING_AGENT_MODEL_ERROR"), "{text}");
    let (code, text) = run_cli(&server, &app.slug, "x", &["--model", "nope/none"]).await;
    assert_ne!(code, 0);
    assert!(text.contains("CODING_AGENT_MODEL_UNAVAILABLE"), "{text}");
    let (code, text) = run_cli(&server, "no-such-app", "x", &[]).await;
    assert_ne!(code, 0);
    assert!(text.contains("no-such-app"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_queue_enqueues_on_a_busy_app() {
    use crate::queue::{QUEUE_SCRIPT, wait_drained};
    let server = TestServer::with_script(StoreKind::Sqlite, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    crate::runs::start_run(&admin, &app, serde_json::json!({"input": "talk slowly"})).await;
    let (code, text) = run_cli(&server, &app.slug, "busy", &[]).await;
    assert_ne!(code, 0);
    assert!(text.contains("CODING_AGENT_RUN_ACTIVE"), "{text}");
    let (code, text) = run_cli(&server, &app.slug, "queued one", &["--queue"]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("queued at position 1"), "{text}");
    let runs = wait_drained(&admin, &app, 2).await;
    assert_eq!(runs[1].input, "queued one");
}
