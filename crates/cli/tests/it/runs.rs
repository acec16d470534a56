//! Runs over real HTTP with the scripted model: the whole lifecycle, the event stream and
//! its resumption, cancellation, policy refusals, pinning and every model failure class.

use std::time::{Duration, Instant};

use draftsmith_core::api::{App, ChatMessage, Draft, MessageStatus, Run, RunList};
use draftsmith_core::{ErrorCode, EventBody, RunEvent, RunStatus};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::{EventReader, assert_well_formed, collect};
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;

pub const MULTI_STEP: &str = include_str!("../fixtures/scripts/multi_step.json");
pub const SLOW_TEXT: &str = include_str!("../fixtures/scripts/slow_text.json");
const SLOW_TOOL: &str = include_str!("../fixtures/scripts/slow_tool.json");
const BAD_INPUT: &str = include_str!("../fixtures/scripts/bad_input_then_fix.json");
const ENDLESS: &str = include_str!("../fixtures/scripts/endless_tools.json");

both_stores!(
    multi_step_run_end_to_end,
    anthropic_provider_runs_the_same_loop,
    resume_from_every_last_event_id,
    live_followers_see_every_event_once,
    cancel_mid_stream,
    cancel_mid_tool_kills_its_processes,
    second_active_run_is_refused,
    unavailable_model_or_engine_persists_nothing,
    model_stays_pinned_after_a_configuration_change,
    model_failures_end_the_run_failed,
    bad_tool_input_is_reported_and_corrected,
    step_limit_pauses_the_run,
    an_answers_last_deltas_come_before_its_landing,
);

pub async fn new_app(admin: &ApiClient, template: &str) -> App {
    admin
        .post(
            "/admin/apps",
            &json!({"name": "Run Test", "template": template}),
            201,
        )
        .await
}

/// The app's `coding-agent/capabilities`.
pub async fn capabilities(admin: &ApiClient, app: &App) -> Value {
    admin
        .get(
            &format!("/admin/apps/{}/coding-agent/capabilities", app.id),
            200,
        )
        .await
}

pub async fn start_run(admin: &ApiClient, app: &App, body: Value) -> Run {
    admin
        .post(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &body,
            201,
        )
        .await
}

/// Starts a run and follows it to its end, which must complete it: the run and its
/// events, checked well-formed.
pub async fn completed_run(admin: &ApiClient, app: &App, body: Value) -> (Run, Vec<RunEvent>) {
    let run = start_run(admin, app, body).await;
    let events = collect(admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    (run, events)
}

/// The assistant's message the run left in its chat session.
async fn assistant_message(server: &TestServer, run: &Run) -> ChatMessage {
    let messages = server
        .store
        .chat_messages(run.chat_session_id)
        .await
        .unwrap();
    messages
        .into_iter()
        .find(|m| m.role == draftsmith_core::api::ChatRole::Assistant)
        .expect("the run left an assistant message")
}

/// The answer text the run's deltas streamed.
pub fn deltas(events: &[RunEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::AssistantDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

fn types(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.body.event_type()).collect()
}

async fn multi_step_run_end_to_end(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let run = start_run(&admin, &app, json!({"input": "Add a greeting"})).await;
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.requested_model_id, "auto");
    assert_eq!(run.resolved_model_id, "mock/coder");
    assert_eq!(run.engine.as_str(), "native");
    assert!(
        run.stream_url
            .ends_with(&format!("/runs/{}/stream", run.run_id))
    );

    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    let kinds = types(&events);
    assert_eq!(
        &kinds[..4],
        [
            "run.accepted",
            "checkpoint.created",
            "run.started",
            "sandbox.ready"
        ]
    );
    let tools: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::ToolStarted { tool, .. } => Some(("started", tool.as_str())),
            EventBody::ToolCompleted { tool, .. } => Some(("completed", tool.as_str())),
            EventBody::ToolFailed { tool, .. } => Some(("failed", tool.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        tools,
        [
            ("started", "list"),
            ("completed", "list"),
            ("started", "write"),
            ("completed", "write"),
            ("started", "read"),
            ("completed", "read")
        ]
    );
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["draft.synced", "checkpoint.created", "run.completed"]
    );
    let text = deltas(&events);
    assert_eq!(
        text,
        "Let me see what is here.I'll add a greeting.Added src/Hello.jsx with a greeting."
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains("SECRET-REASONING"),
        "reasoning leaked into the stream"
    );
    let write = events.iter().find_map(|e| match &e.body {
        EventBody::ToolCompleted { tool, paths, .. } if tool == "write" => Some(paths.clone()),
        _ => None,
    });
    assert_eq!(write, Some(vec!["src/Hello.jsx".to_owned()]));
    match &events.last().unwrap().body {
        EventBody::RunCompleted {
            revision, summary, ..
        } => {
            assert_eq!(*revision, 2);
            assert_eq!(summary, "Added src/Hello.jsx with a greeting.");
        }
        other => panic!("{other:?}"),
    }

    let finished: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(finished.status, RunStatus::Completed);
    assert_eq!(finished.result_revision, Some(2));
    assert_eq!(finished.last_seq, events.len() as i64);
    for key in [
        "create_run",
        "create_run_api",
        "sandbox_start",
        "first_token",
        "total",
    ] {
        assert!(
            finished
                .timing_metrics_ms
                .get(key)
                .is_some_and(Value::is_u64),
            "{key}: {:?}",
            finished.timing_metrics_ms
        );
    }
    let (hello, revision) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/src/Hello.jsx", app.id))
        .await;
    assert_eq!(revision, 2);
    assert!(String::from_utf8(hello).unwrap().contains("Hello!"));

    let messages = server
        .store
        .chat_messages(run.chat_session_id)
        .await
        .unwrap();
    let roles: Vec<(&str, MessageStatus)> = messages
        .iter()
        .map(|m: &ChatMessage| {
            (
                if m.role == draftsmith_core::api::ChatRole::User {
                    "user"
                } else {
                    "assistant"
                },
                m.status,
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("user", MessageStatus::Complete),
            ("assistant", MessageStatus::Complete)
        ]
    );
    assert!(
        server.model().violations().is_empty(),
        "{:?}",
        server.model().violations()
    );
    let requests = server.model().requests();
    assert_eq!(requests.len(), 4);
    assert!(requests.iter().all(|r| r.body["model"] == "coder"));
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(system.contains("App template: vite-react."), "{system}");
}

async fn anthropic_provider_runs_the_same_loop(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (_, events) = completed_run(
        &admin,
        &app,
        json!({"input": "Add a greeting", "model_id": "mock-anthropic/claude"}),
    )
    .await;
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains("SECRET-REASONING")
    );
    let requests = server.model().requests();
    assert!(requests.iter().all(|r| r.path == "/v1/messages"));
    assert!(server.model().violations().is_empty());
}

/// An answer streamed as thousands of one-character deltas with no delay leaves the
/// sink's writer busy when the engine returns: the landing must wait for every one of them,
/// so none is refused after the run ended and the log holds the whole answer before its
/// terminal event, as the stored message does.
async fn an_answers_last_deltas_come_before_its_landing(kind: StoreKind) {
    let answer: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let script = json!({"scenarios": [{"name": "long-answer",
        "turns": [{"steps": [{"text": answer, "chunk": 1}]}]}]});
    let server = TestServer::with_script(kind, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (run, events) = completed_run(&admin, &app, json!({"input": "say a lot"})).await;
    // `completed_run` checked that the terminal event is the log's last.
    assert_eq!(deltas(&events), answer, "the log lost or reordered deltas");
    assert_eq!(assistant_message(&server, &run).await.content, answer);
}

async fn resume_from_every_last_event_id(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "go"})).await;
    let all = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&all, 1);
    for after in 0..all.len() as i64 {
        let rest = collect(&admin, &run.stream_url, Some(after)).await;
        assert_eq!(rest, all[after as usize..], "resuming after {after}");
        let query: Vec<RunEvent> =
            EventReader::open(&admin, &format!("{}?after={after}", run.stream_url), None)
                .await
                .rest()
                .await;
        assert_eq!(query, all[after as usize..], "?after={after}");
    }
    // Resuming after the terminal event returns nothing and closes.
    assert!(
        collect(&admin, &run.stream_url, Some(all.len() as i64))
            .await
            .is_empty()
    );
    let bad = admin
        .request(reqwest::Method::GET, &run.stream_url)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn live_followers_see_every_event_once(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TEXT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    let mut first = EventReader::open(&admin, &run.stream_url, None).await;
    let mut seen = Vec::new();
    while seen.len() < 8 {
        seen.push(first.next().await.unwrap());
    }
    // Joins mid-run, from the start.
    let late = tokio::spawn({
        let admin = admin.clone();
        let url = run.stream_url.clone();
        async move { collect(&admin, &url, None).await }
    });
    // Drops its connection mid-run and resumes with Last-Event-ID.
    let resumed = {
        let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(reader.next().await.unwrap());
        }
        drop(reader);
        let last = got.last().unwrap().seq;
        got.extend(collect(&admin, &run.stream_url, Some(last)).await);
        got
    };
    seen.extend(first.rest().await);
    assert_well_formed(&seen, 1);
    assert_eq!(resumed, seen);
    assert_eq!(late.await.unwrap(), seen);
    assert!(deltas(&seen).starts_with("This answer streams slowly"));
}

async fn wait_for(reader: &mut EventReader, wanted: &str) -> Vec<RunEvent> {
    let mut got = Vec::new();
    while let Some(event) = reader.next().await {
        let done = event.body.event_type() == wanted;
        got.push(event);
        if done {
            return got;
        }
    }
    panic!("stream ended before {wanted}: {got:#?}");
}

async fn cancel_mid_stream(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TEXT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    let mut events = wait_for(&mut reader, "assistant.delta").await;
    let clock = Instant::now();
    let cancelled: Run = admin
        .post(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/cancel",
                app.id, run.run_id
            ),
            &json!({}),
            202,
        )
        .await;
    assert_eq!(cancelled.cancel_requested_by.as_deref(), Some("admin"));
    events.extend(reader.rest().await);
    let took = clock.elapsed();
    assert_well_formed(&events, 1);
    match &events.last().unwrap().body {
        EventBody::RunCancelled { by, .. } => assert_eq!(by, "admin"),
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    let requests = server.model().requests().len();
    let partial = assistant_message(&server, &run).await;
    assert_eq!(partial.status, MessageStatus::Partial);
    assert!(
        !partial.content.is_empty()
            && "This answer streams slowly, one small"
                .starts_with(&partial.content[..partial.content.len().min(10)])
    );
    // Cancelling again is harmless; the run stays cancelled.
    admin
        .post::<_, Value>(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/cancel",
                app.id, run.run_id
            ),
            &json!({}),
            202,
        )
        .await;
    let after: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(after.status, RunStatus::Cancelled);
    assert_eq!(
        server.model().requests().len(),
        requests,
        "no model call after cancel"
    );
}

/// Processes whose working directory is inside `root`.
fn processes_in(root: &std::path::Path) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd"))
            && cwd.starts_with(root)
        {
            out.push(pid);
        }
    }
    out
}

async fn cancel_mid_tool_kills_its_processes(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TOOL).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "run something long"})).await;
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    let mut events = wait_for(&mut reader, "tool.started").await;
    let sandbox = server
        .db
        .dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id))
        .join("workspace");
    let marker = sandbox.join("started.txt");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !processes_in(&sandbox).is_empty(),
        "the command runs in the sandbox"
    );
    admin
        .post::<_, Value>(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/cancel",
                app.id, run.run_id
            ),
            &json!({}),
            202,
        )
        .await;
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    assert_eq!(events.last().unwrap().body.event_type(), "run.cancelled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_in(&sandbox).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes survived the cancel: {:?}",
            processes_in(&sandbox)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn second_active_run_is_refused(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TEXT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "one"})).await;
    let refused = admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "two"}),
            409,
        )
        .await;
    let details = assert_error(&refused, "CODING_AGENT_RUN_ACTIVE");
    assert_eq!(details["run_id"], first.run_id.to_string());
    let list: RunList = admin
        .get(&format!("/admin/apps/{}/coding-agent/runs", app.id), 200)
        .await;
    assert_eq!(list.runs.len(), 1);
    // Another app is not blocked.
    let other = new_app(&admin, "static").await;
    start_run(&admin, &other, json!({"input": "elsewhere"})).await;
    admin
        .post::<_, Value>(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/cancel",
                app.id, first.run_id
            ),
            &json!({}),
            202,
        )
        .await;
    collect(&admin, &first.stream_url, None).await;
    let next = start_run(
        &admin,
        &app,
        json!({"input": "three", "chat_session_id": first.chat_session_id}),
    )
    .await;
    assert_eq!(next.chat_session_id, first.chat_session_id);
}

async fn unavailable_model_or_engine_persists_nothing(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let url = format!("/admin/apps/{}/coding-agent/runs", app.id);
    let cases = [
        (
            json!({"input": "x", "model_id": "nope/model"}),
            400,
            "CODING_AGENT_MODEL_UNAVAILABLE",
        ),
        (
            json!({"input": "x", "model_id": "mock/missing"}),
            400,
            "CODING_AGENT_MODEL_UNAVAILABLE",
        ),
        (
            json!({"input": "x", "engine": "gpt"}),
            400,
            "VALIDATION_FAILED",
        ),
        (json!({"input": "   "}), 400, "VALIDATION_FAILED"),
        (
            json!({"input": "x", "chat_session_id": uuid::Uuid::new_v4()}),
            404,
            "NOT_FOUND",
        ),
    ];
    for (body, status, code) in cases {
        for _ in 0..2 {
            // Deterministic: the same request gets the same answer.
            let answer = admin.post::<_, Value>(&url, &body, status).await;
            assert_error(&answer, code);
        }
    }
    let list: RunList = admin.get(&url, 200).await;
    assert!(list.runs.is_empty());
    assert!(
        server
            .store
            .chat_sessions(app.id, &draftsmith_core::UserId("admin".into()))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(server.model().requests().is_empty());

    let mut closed = config_for_model(&server.model().base_url());
    closed.coding_agent.native_enabled = false;
    let strict = TestServer::start_with(kind, closed).await;
    let strict_admin = strict.admin();
    let app = new_app(&strict_admin, "static").await;
    let refused = strict_admin
        .post::<_, Value>(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "x", "engine": "native"}),
            400,
        )
        .await;
    assert_error(&refused, "CODING_AGENT_ENGINE_UNAVAILABLE");
    let caps = capabilities(&strict_admin, &app).await;
    assert_eq!(caps["native_enabled"], false);
    assert!(caps["native_tool_count"].as_u64().unwrap() >= 9);
    assert_eq!(
        caps["native_tools"].as_array().unwrap().len() as u64,
        caps["native_tool_count"].as_u64().unwrap()
    );
    let models: Value = strict_admin
        .get(&format!("/admin/apps/{}/coding-agent/models", app.id), 200)
        .await;
    assert_eq!(models["auto"], "mock/coder");
}

async fn model_stays_pinned_after_a_configuration_change(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TEXT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "first"})).await;
    assert_eq!(run.resolved_model_id, "mock/coder");
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    wait_for(&mut reader, "assistant.delta").await;
    // The operator changes the default model while the run streams.
    let mut changed = config_for_model(&server.model().base_url());
    changed.models.default = "mock/other".into();
    server
        .state
        .runner
        .replace_registry(changed.model_registry(&|_| None, None).unwrap());
    let rest = reader.rest().await;
    assert_eq!(rest.last().unwrap().body.event_type(), "run.completed");
    let finished: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(finished.resolved_model_id, "mock/coder");
    let next = start_run(&admin, &app, json!({"input": "second", "model_id": "auto"})).await;
    assert_eq!(next.resolved_model_id, "mock/other");
    collect(&admin, &next.stream_url, None).await;
    let models: Vec<String> = server
        .model()
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(models, ["coder", "other"]);
}

async fn model_failures_end_the_run_failed(kind: StoreKind) {
    let cases = [
        (
            include_str!("../fixtures/scripts/http_400.json"),
            "too long",
            1,
        ),
        (
            include_str!("../fixtures/scripts/http_500.json"),
            "upstream exploded",
            3,
        ),
        (include_str!("../fixtures/scripts/cut_stream.json"), "", 1),
        (
            include_str!("../fixtures/scripts/malformed_stream.json"),
            "malformed",
            1,
        ),
    ];
    for (script, wanted, attempts) in cases {
        let server = TestServer::with_script(kind, script).await;
        let admin = server.admin();
        let app = new_app(&admin, "static").await;
        let run = start_run(&admin, &app, json!({"input": "fail please"})).await;
        let events = collect(&admin, &run.stream_url, None).await;
        assert_well_formed(&events, 1);
        let error = match &events.last().unwrap().body {
            EventBody::RunFailed { error, .. } => error.clone(),
            other => panic!("{script}: {other:?}"),
        };
        assert_eq!(error.code, ErrorCode::CodingAgentModelError);
        assert!(
            error.message.contains(wanted),
            "{}: {}",
            script,
            error.message
        );
        assert_eq!(server.model().requests().len(), attempts, "{script}");
        let failed: Run = admin
            .get(
                &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
                200,
            )
            .await;
        assert_eq!(failed.status, RunStatus::Failed);
        assert_eq!(
            failed.error.map(|e| e.code),
            Some(ErrorCode::CodingAgentModelError)
        );
        let draft: Draft = admin
            .get(&format!("/admin/apps/{}/draft", app.id), 200)
            .await;
        assert_eq!(draft.revision, 1, "a failed run leaves the draft alone");
    }
    // A retryable failure followed by success completes, with the retry as a diagnostic.
    let server = TestServer::with_script(
        kind,
        include_str!("../fixtures/scripts/http_500_then_ok.json"),
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "retry"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_eq!(events.last().unwrap().body.event_type(), "run.completed");
    let retried = events
        .iter()
        .flat_map(|e| e.diagnostics.iter())
        .any(|d| d.code == "model_retry");
    assert!(retried, "{events:#?}");
}

async fn bad_tool_input_is_reported_and_corrected(kind: StoreKind) {
    let server = TestServer::with_script(kind, BAD_INPUT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "write notes"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    let failed = events.iter().find_map(|e| match &e.body {
        EventBody::ToolFailed {
            tool_call_id,
            error,
            ..
        } => Some((tool_call_id.clone(), error.clone())),
        _ => None,
    });
    let (call, error) = failed.expect("a tool.failed event");
    assert_eq!(call, "call_bad");
    assert_eq!(error.code, ErrorCode::CodingAgentToolInputInvalid);
    assert_eq!(error.field.as_deref(), Some("content"));
    assert_eq!(events.last().unwrap().body.event_type(), "run.completed");
    // The model received the normalised envelope as the tool result.
    let second = &server.model().requests()[1].body;
    let tool_message = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    let envelope: Value = serde_json::from_str(tool_message["content"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["ok"], false);
    assert_eq!(envelope["error"]["code"], "CODING_AGENT_TOOL_INPUT_INVALID");
    assert_eq!(envelope["error"]["field"], "content");
    let (notes, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/notes.md", app.id))
        .await;
    assert_eq!(notes, b"fixed\n");
}

async fn step_limit_pauses_the_run(kind: StoreKind) {
    let model = draftsmith_mockmodel::MockModel::start(
        draftsmith_mockmodel::Script::from_json(ENDLESS).unwrap(),
    )
    .await
    .unwrap();
    let mut config = config_for_model(&model.base_url());
    config.coding_agent.max_steps = 2;
    let server = TestServer::start_with(kind, config).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "loop"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    match &events.last().unwrap().body {
        EventBody::RunPaused { reason, .. } => assert_eq!(reason, "step_limit"),
        other => panic!("{other:?}"),
    }
    assert_eq!(model.requests().len(), 2);
    let paused: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(paused.status, RunStatus::Paused);
    // Paused is terminal: the app is free for the next run.
    let list: RunList = admin
        .get(&format!("/admin/apps/{}/coding-agent/runs", app.id), 200)
        .await;
    assert_eq!(list.runs[0].status, RunStatus::Paused);
}
