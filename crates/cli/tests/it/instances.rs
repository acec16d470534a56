//! Runs across real processes: two instances on one PostgreSQL database, a crash with
//! SIGKILL and a restart on both stores, and a survivor reaping a dead instance's run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use draftsmith_core::api::Run;
use draftsmith_core::{ErrorCode, EventBody, RunStatus};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::sse::{EventReader, assert_well_formed, collect};
use draftsmith_testkit::{ADMIN_TOKEN, ApiClient, ServerProcess, StoreKind, TestDb};
use serde_json::json;

use crate::both_stores;
use crate::runs::{SLOW_TEXT, new_app, start_run};
use crate::support::binary;

both_stores!(killed_mid_run_then_restarted);

/// A configuration file that runs the native engine against `model`.
pub(crate) fn config_file(dir: &std::path::Path, model: &MockModel) -> PathBuf {
    let path = dir.join("draftsmith-test.toml");
    let text = format!(
        "[models]\ndefault = \"mock/coder\"\n\n[[providers]]\nid = \"mock\"\nkind = \"openai\"\n\
         base_url = \"{}\"\nmodels = [\"coder\"]\n\n[coding_agent]\ndefault_engine = \"native\"\n\
         native_enabled = true\nrun_lease_seconds = 1.5\nverify = false\n",
        model.base_url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(db: &TestDb, data_dir: &std::path::Path, config: &std::path::Path) -> ServerProcess {
    start_with(db, data_dir, config, &[]).await
}

/// `draftsmith serve` on `db` with its own data directory, `config`, and `extra` variables.
pub(crate) async fn start_with(
    db: &TestDb,
    data_dir: &std::path::Path,
    config: &std::path::Path,
    extra: &[(&str, &str)],
) -> ServerProcess {
    std::fs::create_dir_all(data_dir).unwrap();
    let data = data_dir.to_string_lossy().to_string();
    let config = config.to_string_lossy().to_string();
    let mut env = vec![
        ("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN),
        ("DRAFTSMITH_CONFIG", config.as_str()),
        ("DRAFTSMITH_DATA_DIR", data.as_str()),
    ];
    env.extend_from_slice(extra);
    ServerProcess::start_with_env(&binary(), db, &env).await
}

pub(crate) async fn slow_model() -> MockModel {
    MockModel::start(Script::from_json(SLOW_TEXT).unwrap())
        .await
        .unwrap()
}

pub(crate) async fn wait_for_status(client: &ApiClient, run: &Run, status: RunStatus) -> Run {
    let url = format!(
        "/admin/apps/{}/coding-agent/runs/{}",
        run.app_id, run.run_id
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Run = client.get(&url, 200).await;
        if now.status == status {
            return now;
        }
        assert!(Instant::now() < deadline, "run stayed {:?}", now.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_followed_and_cancelled_through_another_instance() {
    let model = slow_model().await;
    let db = TestDb::new(StoreKind::Postgres).await;
    let config = config_file(db.dir.path(), &model);
    let one = start(&db, &db.dir.path().join("one"), &config).await;
    let two = start(&db, &db.dir.path().join("two"), &config).await;
    let app = new_app(&one.admin(), "static").await;
    let mut announced = sqlx::postgres::PgListener::connect(&db.url).await.unwrap();
    announced
        .listen(draftsmith_store::RUN_EVENTS_CHANNEL)
        .await
        .unwrap();
    let run = start_run(&one.admin(), &app, json!({"input": "talk slowly"})).await;

    // Instance two follows the run instance one executes, live, from the start; its
    // follower watches the run, so instance one announces the run's appends.
    let mut remote = EventReader::open(&two.admin(), &run.stream_url, None).await;
    let mut events = Vec::new();
    while events.len() < 10 {
        events.push(remote.next().await.unwrap());
    }
    let wait = Duration::from_secs(5);
    let notification = tokio::time::timeout(wait, announced.recv()).await;
    let payload = notification.unwrap().unwrap().payload().to_owned();
    assert!(
        payload.starts_with(&format!("{}:", run.run_id)),
        "{payload}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.body.event_type() == "assistant.delta")
    );
    // The second active run is refused by the database, whichever instance is asked.
    let refused = two
        .admin()
        .post::<_, serde_json::Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "x"}),
            409,
        )
        .await;
    assert_eq!(refused["error"]["code"], "CODING_AGENT_RUN_ACTIVE");
    // Cancel through instance two; instance one stops the run.
    let clock = Instant::now();
    two.admin()
        .post::<_, serde_json::Value>(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/cancel",
                app.id, run.run_id
            ),
            &json!({}),
            202,
        )
        .await;
    events.extend(remote.rest().await);
    let took = clock.elapsed();
    assert_well_formed(&events, 1);
    assert_eq!(events.last().unwrap().body.event_type(), "run.cancelled");
    assert!(
        took < Duration::from_secs(5),
        "cross-instance cancel took {took:?}"
    );
    // Both instances serve the same complete log.
    assert_eq!(collect(&one.admin(), &run.stream_url, None).await, events);
}

async fn killed_mid_run_then_restarted(kind: StoreKind) {
    let model = slow_model().await;
    let db = TestDb::new(kind).await;
    let config = config_file(db.dir.path(), &model);
    let data = db.dir.path().join("node");
    let first = start(&db, &data, &config).await;
    let app = new_app(&first.admin(), "static").await;
    let run = start_run(&first.admin(), &app, json!({"input": "talk slowly"})).await;
    let mut reader = EventReader::open(&first.admin(), &run.stream_url, None).await;
    let mut before = Vec::new();
    while before.len() < 6 {
        before.push(reader.next().await.unwrap());
    }
    drop(reader);
    first.kill().await;

    let second = start(&db, &data, &config).await;
    let admin = second.admin();
    let ended = wait_for_status(&admin, &run, RunStatus::Failed).await;
    assert_eq!(
        ended.error.map(|e| e.code),
        Some(ErrorCode::CodingAgentRunOrphaned)
    );
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    assert_eq!(
        events[..before.len()],
        before[..],
        "nothing persisted was lost"
    );
    match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => {
            assert_eq!(error.code, ErrorCode::CodingAgentRunOrphaned)
        }
        other => panic!("{other:?}"),
    }
    let next = start_run(
        &admin,
        &app,
        json!({"input": "again", "chat_session_id": run.chat_session_id}),
    )
    .await;
    let messages = collect(&admin, &next.stream_url, None).await;
    assert_eq!(messages.last().unwrap().body.event_type(), "run.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survivor_ends_a_dead_instances_run_when_its_lease_expires() {
    let model = slow_model().await;
    let db = TestDb::new(StoreKind::Postgres).await;
    let config = config_file(db.dir.path(), &model);
    let doomed = start(&db, &db.dir.path().join("doomed"), &config).await;
    let survivor = start(&db, &db.dir.path().join("survivor"), &config).await;
    let app = new_app(&doomed.admin(), "static").await;
    let run = start_run(&doomed.admin(), &app, json!({"input": "talk slowly"})).await;
    let mut reader = EventReader::open(&survivor.admin(), &run.stream_url, None).await;
    let mut events = Vec::new();
    while events.len() < 5 {
        events.push(reader.next().await.unwrap());
    }
    doomed.kill().await;
    // The survivor's follower sees the run end once the lease (1.5 s) runs out.
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => {
            assert_eq!(error.code, ErrorCode::CodingAgentRunOrphaned)
        }
        other => panic!("{other:?}"),
    }
    let next = start_run(&survivor.admin(), &app, json!({"input": "again"})).await;
    assert_eq!(
        collect(&survivor.admin(), &next.stream_url, None)
            .await
            .last()
            .unwrap()
            .body
            .event_type(),
        "run.completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_survives_a_kill_right_after_the_201() {
    let model = slow_model().await;
    let db = TestDb::new(StoreKind::Sqlite).await;
    let config = config_file(db.dir.path(), &model);
    let data = db.dir.path().join("node");
    let first = start(&db, &data, &config).await;
    let app = new_app(&first.admin(), "static").await;
    let run = start_run(
        &first.admin(),
        &app,
        json!({"input": "remember this prompt"}),
    )
    .await;
    first.kill().await;

    let second = start(&db, &data, &config).await;
    let detail: draftsmith_core::api::ChatSessionDetail = second
        .admin()
        .get(
            &format!(
                "/admin/apps/{}/coding-agent/chat-sessions/{}",
                app.id, run.chat_session_id
            ),
            200,
        )
        .await;
    let first_message = &detail.messages[0];
    assert_eq!(first_message.content, "remember this prompt");
    assert_eq!(first_message.run_id, Some(run.run_id));
    wait_for_status(&second.admin(), &run, RunStatus::Failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_configuration_leaves_running_runs_pinned() {
    let model = slow_model().await;
    let db = TestDb::new(StoreKind::Sqlite).await;
    let config = config_file(db.dir.path(), &model);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("models = [\"coder\"]", "models = [\"coder\", \"other\"]");
    std::fs::write(&config, &text).unwrap();
    let server = start(&db, &db.dir.path().join("node"), &config).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    assert_eq!(run.resolved_model_id, "mock/coder");
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    while reader.next().await.unwrap().body.event_type() != "assistant.delta" {}

    // The operator edits the file and sends SIGHUP while the run streams.
    std::fs::write(
        &config,
        text.replace("default = \"mock/coder\"", "default = \"mock/other\""),
    )
    .unwrap();
    server.signal("HUP").await;
    let models_url = format!("/admin/apps/{}/coding-agent/models", app.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let models: serde_json::Value = admin.get(&models_url, 200).await;
        if models["auto"] == "mock/other" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload never took effect: {models}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rest = reader.rest().await;
    assert_eq!(rest.last().unwrap().body.event_type(), "run.completed");
    let next = start_run(&admin, &app, json!({"input": "again"})).await;
    assert_eq!(next.resolved_model_id, "mock/other");
    collect(&admin, &next.stream_url, None).await;
    let models: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        models,
        ["coder", "other"],
        "the first run stayed on its pinned model"
    );
}

/// A reload covers the runner's settings too: turning the native engine off in the file
/// refuses the next native run, with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_the_engine_policy_to_the_next_run() {
    let model = slow_model().await;
    let db = TestDb::new(StoreKind::Sqlite).await;
    let config = config_file(db.dir.path(), &model);
    let server = start(&db, &db.dir.path().join("node"), &config).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let caps_url = format!("/admin/apps/{}/coding-agent/capabilities", app.id);
    let caps: serde_json::Value = admin.get(&caps_url, 200).await;
    assert_eq!(caps["native_enabled"], true, "{caps}");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "native_enabled = true",
        "native_enabled = false\nmax_steps = 3",
    );
    std::fs::write(&config, text).unwrap();
    server.signal("HUP").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let caps: serde_json::Value = admin.get(&caps_url, 200).await;
        if caps["native_enabled"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload never took effect: {caps}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused: serde_json::Value = admin
        .post(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "x", "engine": "native"}),
            400,
        )
        .await;
    assert_eq!(
        refused["error"]["code"], "CODING_AGENT_ENGINE_UNAVAILABLE",
        "{refused}"
    );
}
