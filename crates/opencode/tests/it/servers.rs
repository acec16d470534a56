//! Two workspaces run at once on two OpenCode servers; and a permission request (forced by
//! an `ask` rule) is refused by the engine instead of hanging its run.

use draftsmith_core::EventBody;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{OpencodeConfig, OpencodeEngine, PermissionAction, is_running};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn two_workspaces_run_at_once_and_permission_requests_never_hang() {
    let model = model(json!({"scenarios": [
        {"name": "ask", "match": {"contains": "SCENARIO_ASK"}, "turns": [
            {"steps": [{"tool_call": {"id": "call_outside", "name": "read",
                "arguments": {"filePath": "/etc/hostname"}}}]},
            {"steps": [{"text": "I may not read outside the workspace."}]}
        ]},
        {"name": "hello", "match": {"contains": "SCENARIO_HELLO"}, "turns": [
            {"steps": [{"tool_call": {"id": "call_hello", "name": "write",
                "arguments": {"filePath": "hello.txt", "content": "hello\n"}}}]},
            {"steps": [{"text": "Hello written."}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let first = workspace(scratch.path(), "first");
    let second = workspace(scratch.path(), "second");
    let engine = OpencodeEngine::new(OpencodeConfig {
        permission_overrides: vec![("external_directory".into(), PermissionAction::Ask)],
        ..config(scratch.path())
    });
    let (ask_sink, hello_sink) = (RecordingSink::default(), RecordingSink::default());
    let (asked, hello) = tokio::time::timeout(RUN_TIMEOUT, async {
        tokio::join!(
            engine.run(
                job(&model, &first, "SCENARIO_ASK"),
                &ask_sink,
                CancellationToken::new()
            ),
            engine.run(
                job(&model, &second, "SCENARIO_HELLO"),
                &hello_sink,
                CancellationToken::new()
            ),
        )
    })
    .await
    .unwrap();

    assert_eq!(
        asked.outcome,
        Outcome::Completed {
            summary: "I may not read outside the workspace.".into()
        }
    );
    assert_eq!(
        hello.outcome,
        Outcome::Completed {
            summary: "Hello written.".into()
        }
    );
    assert!(
        ask_sink
            .diagnostic_codes()
            .contains(&"opencode_permission_refused".to_owned())
    );
    let refused = ask_sink.events().into_iter().find_map(|e| match e {
        EventBody::ToolFailed {
            tool_call_id,
            error,
            ..
        } if tool_call_id == "call_outside" => Some(error.message),
        _ => None,
    });
    assert!(
        refused.is_some_and(|m| m.contains("rejected")),
        "{:?}",
        ask_sink.events()
    );
    assert_eq!(
        std::fs::read_to_string(second.join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert!(!first.join("hello.txt").exists());

    let pids = [
        engine.server_pid(&first).await.unwrap(),
        engine.server_pid(&second).await.unwrap(),
    ];
    assert_ne!(pids[0], pids[1]);
    assert!(pids.iter().all(|p| is_running(*p)));
    for (ws, timings) in [
        (&first, engine.timings(&first)),
        (&second, engine.timings(&second)),
    ] {
        eprintln!("{}: {timings:?}", ws.display());
    }
    // Stopping one sandbox's server leaves the other alone.
    engine.stop_server(&first).await;
    assert_gone(&pids[..1]).await;
    assert!(is_running(pids[1]));
    shut_down(&engine, &pids).await;
}

#[tokio::test]
async fn a_new_pinned_model_restarts_the_server_and_anthropic_uses_its_own_sdk() {
    let model = model(json!({"scenarios": [
        {"name": "openai", "match": {"contains": "SCENARIO_OPENAI"}, "turns": [
            {"steps": [{"text": "Via chat completions."}]}
        ]},
        {"name": "anthropic", "match": {"contains": "SCENARIO_ANTHROPIC"}, "turns": [
            {"steps": [{"reasoning": "SECRET_THINKING", "chunk": 4},
                {"tool_call": {"id": "toolu_write", "name": "write",
                    "arguments": {"filePath": "claude.txt", "content": "claude\n"}}}]},
            {"steps": [{"text": "Via messages.", "chunk": 3}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "SCENARIO_OPENAI"),
            &RecordingSink::default(),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "Via chat completions.".into()
        }
    );
    let first_pid = engine.server_pid(&ws).await.unwrap();

    let mut claude = job(&model, &ws, "SCENARIO_ANTHROPIC");
    claude.model = anthropic_model(&model);
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(claude, &sink, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "Via messages.".into()
        },
        "{:?} {:?}",
        engine.timings(&ws),
        sink.events()
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("claude.txt")).unwrap(),
        "claude\n"
    );
    assert!(!format!("{:?}", sink.events()).contains("SECRET_THINKING"));
    assert!(model.requests().iter().any(|r| r.path == "/v1/messages"));
    assert!(
        !engine.timings(&ws).unwrap().server_reused,
        "new settings need a new server"
    );
    let second_pid = engine.server_pid(&ws).await.unwrap();
    assert_ne!(first_pid, second_pid);
    shut_down(&engine, &[first_pid, second_pid]).await;
}

fn anthropic_model(model: &draftsmith_mockmodel::MockModel) -> draftsmith_engine::ResolvedModel {
    use draftsmith_engine::{ModelRegistry, ProviderKind, ProviderSpec};
    let registry = ModelRegistry::new(
        vec![ProviderSpec {
            id: "claude".into(),
            kind: ProviderKind::Anthropic,
            base_url: model.base_url(),
            api_key: Some("test-key".into()),
            missing_key_env: None,
            models: vec!["claude-mock".into()],
            demo: false,
        }],
        "claude/claude-mock".into(),
    );
    registry.resolve(Some("claude/claude-mock")).unwrap()
}
