//! Runs in sandboxes: warm reuse within a chat, confinement seen from a run's own command,
//! and the same run through a remote sandbox controller.

use std::sync::Arc;

use draftsmith_core::EventBody;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::{Value, json};

use crate::runs::{MULTI_STEP, capabilities, new_app, start_run};

const THREE_ANSWERS: &str = include_str!("../fixtures/scripts/three_answers.json");

fn ready(events: &[draftsmith_core::RunEvent]) -> bool {
    events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::SandboxReady { reused, .. } => Some(*reused),
            _ => None,
        })
        .expect("a sandbox.ready event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_reuses_its_warm_sandbox() {
    let server = TestServer::with_script(StoreKind::Sqlite, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "one"})).await;
    assert!(!ready(&collect(&admin, &first.stream_url, None).await));
    let second = start_run(
        &admin,
        &app,
        json!({"input": "two", "chat_session_id": first.chat_session_id}),
    )
    .await;
    assert!(
        ready(&collect(&admin, &second.stream_url, None).await),
        "same chat, warm sandbox"
    );
    let other = start_run(&admin, &app, json!({"input": "new chat"})).await;
    assert!(
        !ready(&collect(&admin, &other.stream_url, None).await),
        "another chat gets its own"
    );
    let caps = capabilities(&admin, &app).await;
    assert_eq!(caps["sandbox_isolation"], "bwrap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_commands_cannot_see_the_service_or_other_sandboxes() {
    // A first chat leaves a warm sandbox with a secret in it.
    let server = TestServer::with_script(StoreKind::Sqlite, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "one"})).await;
    collect(&admin, &first.stream_url, None).await;
    let data = server.db.dir.path().to_path_buf();
    let other = data
        .join("sandboxes")
        .join(format!("chat-{}", first.chat_session_id))
        .join("workspace");
    std::fs::write(other.join("secret.txt"), "other sandbox secret").unwrap();
    std::fs::write(data.join("tokens.txt"), "service secret").unwrap();
    assert!(data.join("draftsmith.db").exists());

    let command = format!(
        "cat {db} || echo NO_DB; cat {tokens} || echo NO_TOKENS; cat {secret} || echo NO_OTHER; echo mine > own.txt && cat own.txt",
        db = data.join("draftsmith.db").display(),
        tokens = data.join("tokens.txt").display(),
        secret = other.join("secret.txt").display()
    );
    let script = json!({"scenarios": [{"name": "probe", "turns": [
        {"steps": [{"tool_call": {"id": "call_probe", "name": "run_command", "arguments": {"command": command}}}]},
        {"steps": [{"text": "probed"}]}
    ]}]});
    let model = MockModel::start(Script::from_json(&script.to_string()).unwrap())
        .await
        .unwrap();
    server.state.runner.replace_registry(
        config_for_model(&model.base_url())
            .model_registry(&|_| None, None)
            .unwrap(),
    );
    let probe = start_run(&admin, &app, json!({"input": "probe"})).await;
    let events = collect(&admin, &probe.stream_url, None).await;
    let output = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolCompleted { output, .. } => Some(output.to_string()),
            _ => None,
        })
        .expect("the command ran");
    assert!(
        output.contains("NO_DB") && output.contains("NO_TOKENS") && output.contains("NO_OTHER"),
        "{output}"
    );
    assert!(
        !output.contains("service secret") && !output.contains("other sandbox secret"),
        "{output}"
    );
    assert!(
        output.contains("mine"),
        "its own workspace is writable: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_works_through_a_remote_sandbox_controller() {
    let controller_dir = tempfile::tempdir().unwrap();
    let local = draftsmith_sandbox::LocalController::new(
        controller_dir.path().join("sandboxes"),
        controller_dir.path().join("cache"),
        draftsmith_sandbox::IsolationMode::Auto,
    )
    .unwrap();
    let secret = "a-shared-secret-of-some-length".to_owned();
    let router = draftsmith_sandbox::controller_router(Arc::new(local), secret.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let model = MockModel::start(Script::from_json(MULTI_STEP).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    config.sandbox.controller_url = url;
    config.sandbox.controller_secret = secret;
    let server = TestServer::start_with(StoreKind::Sqlite, config).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "greet"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    let (hello, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/src/Hello.jsx", app.id))
        .await;
    assert!(String::from_utf8(hello).unwrap().contains("Hello!"));
    // The workspace lives with the controller, not in the service's data directory.
    assert!(
        !server
            .db
            .dir
            .path()
            .join("sandboxes")
            .join(format!("chat-{}", run.chat_session_id))
            .exists()
    );
    let remote = controller_dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id));
    assert!(remote.exists());
    // The agent contract was seeded into the remote workspace too.
    let finished: draftsmith_core::api::Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    let seeded: Value = serde_json::from_slice(
        &std::fs::read(
            remote
                .join("workspace")
                .join(draftsmith_tools::CONTRACT_FILE),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        seeded,
        finished.input_params["context"]["selected_agent_contract"]
    );
}

/// A server whose scripted model plays `next` after a scenario that plants a symbolic
/// link in place of the workspace's `.cache/` (where the contract is seeded), to a
/// directory outside; and the completed run of a static app that planted it.
async fn planted(
    next: Value,
) -> (
    tempfile::TempDir,
    TestServer,
    draftsmith_core::api::App,
    draftsmith_core::api::Run,
) {
    let outside = tempfile::tempdir().unwrap();
    let command = format!(
        "rm -rf .cache && ln -s {} .cache && echo planted",
        outside.path().display()
    );
    let script = json!({"scenarios": [
        {"name": "plant", "match": {"contains": "plant"}, "turns": [
            {"steps": [{"tool_call": {"id": "call_plant", "name": "run_command",
                "arguments": {"command": command}}}]},
            {"steps": [{"text": "planted"}]}
        ]},
        next
    ]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "plant a link"})).await;
    let events = collect(&admin, &first.stream_url, None).await;
    assert_eq!(events.last().unwrap().body.event_type(), "run.completed");
    (outside, server, app, first)
}

/// The service seeds the agent contract outside the confinement, so a symlink the agent
/// planted must not carry that write out of the workspace: the seeding run fails closed,
/// nothing lands outside, and the chat's next run starts over in a fresh sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_symlink_never_carries_the_seeding_outside() {
    let other = json!({"name": "other", "turns": [{"steps": [{"text": "fine"}]}]});
    let (outside, server, app, first) = planted(other).await;
    let admin = server.admin();
    let chat = first.chat_session_id;

    let second = start_run(
        &admin,
        &app,
        json!({"input": "go on", "chat_session_id": chat}),
    )
    .await;
    let events = collect(&admin, &second.stream_url, None).await;
    match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => {
            assert_eq!(
                error.code,
                draftsmith_core::ErrorCode::CodingAgentSandboxFailed
            );
            assert!(error.message.contains("symbolic link"), "{}", error.message);
        }
        other => panic!("expected run.failed, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing was written through the link"
    );

    let third = start_run(
        &admin,
        &app,
        json!({"input": "again", "chat_session_id": chat}),
    )
    .await;
    let events = collect(&admin, &third.stream_url, None).await;
    assert_eq!(events.last().unwrap().body.event_type(), "run.completed");
    assert!(!ready(&events), "a fresh sandbox replaced the failed one");
}

/// Files in [`add_bulk_files`]: enough that filling a sandbox with them takes far longer
/// than the scripted model's answer.
const BULK_FILES: usize = 3_000;

/// Writes [`BULK_FILES`] small files into the app's draft, `bulk/f00000.txt` holding
/// `file 0` and so on.
async fn add_bulk_files(server: &TestServer, app: &draftsmith_core::api::App) {
    let changes = (0..BULK_FILES)
        .map(|i| draftsmith_store::FileChange {
            path: draftsmith_core::DraftPath::parse(&format!("bulk/f{i:05}.txt")).unwrap(),
            content: Some(format!("file {i}\n").into_bytes()),
        })
        .collect();
    let by = draftsmith_core::UserId("test".into());
    server
        .store
        .write_draft(app.id, None, changes, &by)
        .await
        .unwrap();
}

/// The native engine asks the model while the chat's sandbox is still being filled: a tool
/// it calls meanwhile waits for the fill (it reads the draft's last file), and what it
/// streamed before goes out after `sandbox.ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_called_while_the_sandbox_is_filled_waits_for_it() {
    let last = format!("bulk/f{:05}.txt", BULK_FILES - 1);
    let script = json!({"scenarios": [{"name": "read", "turns": [
        {"steps": [{"text": "Reading the last file."},
            {"tool_call": {"id": "call_read", "name": "read", "arguments": {"path": last}}}]},
        {"steps": [{"text": "Read it."}]}
    ]}]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    add_bulk_files(&server, &app).await;

    let run = start_run(&admin, &app, json!({"input": "read the last file"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    let types: Vec<&str> = events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(types.last(), Some(&"run.completed"), "{events:#?}");
    let ready = types.iter().position(|t| *t == "sandbox.ready").unwrap();
    let engines = types
        .iter()
        .position(|t| t.starts_with("assistant.") || t.starts_with("tool."))
        .unwrap();
    assert!(ready < engines, "{types:?}");
    let read = events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::ToolCompleted { output, .. } => Some(output.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the read completed: {events:#?}"));
    assert!(read.contains(&format!("file {}", BULK_FILES - 1)), "{read}");
    assert_eq!(server.model().requests().len(), 2);
}

/// An engine working ahead of its sandbox is stopped when the sandbox cannot be made: the
/// model was asked, its tool never ran, and the run fails with the sandbox's code after
/// what the engine streamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_that_cannot_be_made_stops_the_engine_working_ahead() {
    let look = json!({"name": "look", "match": {"contains": "look"}, "turns": [
        {"steps": [{"text": "Looking."},
            {"tool_call": {"id": "call_list", "name": "list", "arguments": {"path": "."}}}]},
        {"steps": [{"text": "never asked"}]}
    ]});
    let (_outside, server, app, first) = planted(look).await;
    let admin = server.admin();

    // The planted link makes the contract's seeding, so the sandbox, fail; only once
    // the sandbox has the new files, long after the model was asked.
    add_bulk_files(&server, &app).await;
    let asked_before = server.model().requests().len();
    let second = start_run(
        &admin,
        &app,
        json!({"input": "look", "chat_session_id": first.chat_session_id}),
    )
    .await;
    let events = collect(&admin, &second.stream_url, None).await;
    let types: Vec<&str> = events.iter().map(|e| e.body.event_type()).collect();
    match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => assert_eq!(
            error.code,
            draftsmith_core::ErrorCode::CodingAgentSandboxFailed
        ),
        other => panic!("expected run.failed, got {other:?}"),
    }
    assert!(!types.contains(&"sandbox.ready"), "{types:?}");
    assert!(!types.contains(&"tool.completed"), "{types:?}");
    assert_eq!(
        server.model().requests().len() - asked_before,
        1,
        "the model was asked once, while the sandbox was made"
    );
    assert!(
        types.contains(&"assistant.delta"),
        "what it streamed is kept: {types:?}"
    );
}

/// The workspaces of the service's spares of `template` (by their directory's inode), once
/// it keeps two complete ones (a spare's state file is written last).
async fn spares_of(root: &std::path::Path, template: &str) -> Vec<(u64, std::path::PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let spares: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".spare-")
            })
            .filter(|p| {
                let state = std::fs::read(p.join("state.json")).unwrap_or_default();
                serde_json::from_slice::<Value>(&state).is_ok_and(|s| s["template"] == template)
            })
            .filter_map(|p| {
                let workspace = p.join("workspace");
                let ino = std::fs::metadata(&workspace).ok()?.ino();
                Some((ino, workspace))
            })
            .collect();
        if spares.len() == 2 {
            return spares;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no spares of {template}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Every file below `dir` but `.cache/` (relative path → SHA-256).
fn hashes(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".cache" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let hash = draftsmith_core::BlobHash::of(&std::fs::read(&path).unwrap());
                out.insert(rel, hash.as_str().to_owned());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The service keeps spare sandboxes of each template holding exactly what a new app of
/// it holds (the template and OpenCode's project tools), and a new chat's first sandbox is
/// one of them, claimed whole: its workspace is the spare's directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_chats_sandbox_is_a_spare_holding_the_apps_files() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::with_script(StoreKind::Sqlite, THREE_ANSWERS).await;
    let admin = server.admin();
    let root = server.db.dir.path().join("sandboxes");
    for template in ["static", "vite-react"] {
        let app = new_app(&admin, template).await;
        let draft: draftsmith_core::api::Draft = admin
            .get(&format!("/admin/apps/{}/draft", app.id), 200)
            .await;
        let expected: std::collections::BTreeMap<String, String> = draft
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.as_str().to_owned()))
            .collect();
        let spares = spares_of(&root, template).await;
        for (_, workspace) in &spares {
            assert_eq!(hashes(workspace), expected, "a spare of {template}");
        }
        let run = start_run(&admin, &app, json!({"input": "one"})).await;
        assert!(!ready(&collect(&admin, &run.stream_url, None).await));
        let workspace = root
            .join(format!("chat-{}", run.chat_session_id))
            .join("workspace");
        let ino = std::fs::metadata(&workspace).unwrap().ino();
        assert!(
            spares.iter().any(|(spare, _)| *spare == ino),
            "the first sandbox of a {template} app is one of its spares"
        );
    }
}
