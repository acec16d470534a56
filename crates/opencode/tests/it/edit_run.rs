//! A multi-step edit run on the real OpenCode: the model writes a file, edits it and
//! answers; the workspace changes, the stream carries exactly the model's text and a tool
//! event for every call, reasoning never shows, and the next run reuses the server.

use draftsmith_core::EventBody;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::OpencodeEngine;
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const TEXTS: [&str; 3] = [
    "I'll create the page.",
    "Now the greeting.",
    "Done: App.tsx greets draftsmith.",
];

#[tokio::test]
async fn a_multi_step_edit_run_changes_the_workspace_and_streams_faithfully() {
    let model = model(json!({"scenarios": [
        {"name": "edit", "match": {"contains": "SCENARIO_EDIT"}, "turns": [
            {"steps": [
                {"reasoning": "SECRET_REASONING: plan the page", "chunk": 5},
                {"text": TEXTS[0], "chunk": 4},
                {"tool_call": {"id": "call_write", "name": "write", "split": 3, "arguments": {
                    "filePath": "src/App.tsx",
                    "content": "export default function App() {\n  return <h1>Hello</h1>\n}\n"}}}
            ]},
            {"steps": [
                {"text": TEXTS[1], "chunk": 3},
                {"tool_call": {"id": "call_edit", "name": "edit", "arguments": {
                    "filePath": "src/App.tsx", "oldString": "<h1>Hello</h1>",
                    "newString": "<h1>Hello, draftsmith</h1>"}}}
            ]},
            {"steps": [{"text": TEXTS[2], "chunk": 6}]}
        ]},
        {"name": "again", "match": {"contains": "SCENARIO_AGAIN"}, "turns": [
            {"steps": [{"tool_call": {"name": "read", "arguments": {"filePath": "src/App.tsx"}}}]},
            {"steps": [{"tool_call": {"name": "glob", "arguments": {"pattern": "**/*.tsx"}}}]},
            {"steps": [{"tool_call": {"name": "grep", "arguments": {"pattern": "draftsmith"}}}]},
            {"steps": [{"tool_call": {"name": "read", "arguments": {"filePath": "src/App.tsx"}}}]},
            {"steps": [{"text": "Again.", "chunk": 2}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "SCENARIO_EDIT: greet draftsmith"),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();

    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: TEXTS[2].into()
        }
    );
    let app = std::fs::read_to_string(ws.join("src/App.tsx")).unwrap();
    assert!(app.contains("<h1>Hello, draftsmith</h1>"), "{app}");
    assert_eq!(sink.streamed(), TEXTS.concat());
    assert_eq!(sink.messages(), TEXTS.to_vec());
    assert_eq!(finished.transcript, TEXTS.join("\n\n"));
    assert!(!format!("{:?}", sink.events()).contains("SECRET_REASONING"));
    let tools: Vec<(&str, String, String)> = sink.tool_events();
    let expected = [
        ("tool.started", "write", "call_write"),
        ("tool.completed", "write", "call_write"),
        ("tool.started", "edit", "call_edit"),
        ("tool.completed", "edit", "call_edit"),
    ];
    assert_eq!(
        tools,
        expected
            .map(|(a, b, c)| (a, b.to_owned(), c.to_owned()))
            .to_vec()
    );
    let paths: Vec<Vec<String>> = sink
        .events()
        .iter()
        .filter_map(|e| match e {
            EventBody::ToolCompleted { paths, .. } => Some(paths.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, vec![vec!["src/App.tsx".to_owned()]; 2]);
    // Each delta belongs to the message its turn's assistant.message closes.
    let mut current = None;
    for event in sink.events() {
        match event {
            EventBody::AssistantDelta { message_id, .. } => {
                assert!(current.is_none() || current == Some(message_id.clone()));
                current = Some(message_id);
            }
            EventBody::AssistantMessage { message_id, .. } => {
                assert_eq!(current.take(), Some(message_id));
            }
            _ => {}
        }
    }
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    assert_eq!(model.requests().len(), 3, "no title request, one per step");
    let first = engine.timings(&ws).unwrap();
    eprintln!("edit run timings (cold): {first:?}");
    assert!(!first.server_reused && first.steps == 3 && first.first_token.is_some());
    let pid = engine.server_pid(&ws).await.unwrap();

    eprintln!("server RSS after the cold run: {} MB", rss_mb(pid));

    // The next run in the same workspace reuses the warm server (five steps, for timing).
    let again = RecordingSink::default();
    let finished = engine
        .run(
            job(&model, &ws, "SCENARIO_AGAIN"),
            &again,
            CancellationToken::new(),
        )
        .await;
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "Again.".into()
        }
    );
    assert_eq!(again.streamed(), "Again.");
    let warm = engine.timings(&ws).unwrap();
    eprintln!(
        "warm 5-step run: {warm:?}, {} ms per step; server RSS {} MB",
        warm.total / warm.steps as u64,
        rss_mb(pid)
    );
    assert!(warm.server_reused && warm.steps == 5);
    // The warm run's session was made while the server idled after the first run.
    assert!(
        !first.session_ahead && warm.session_ahead,
        "{first:?} {warm:?}"
    );
    assert!(
        !first.polled && !warm.polled,
        "both runs follow the server's event stream, never polling"
    );
    // Each run ends on the prompt's answer once its events showed every earlier step, or
    // (those events late, under load) on the idle event: never after a last look at the
    // session's messages.
    for timings in [&first, &warm] {
        assert!(
            matches!(
                timings.ended_by.as_str(),
                "the prompt's answer, with every step's events" | "idle, confirmed by its events"
            ),
            "{timings:?}"
        );
    }
    assert_eq!(again.tool_events().len(), 8, "{:?}", again.tool_events());
    assert_eq!(engine.server_pid(&ws).await, Some(pid));
    let mut pids = draftsmith_opencode::descendants(pid);
    pids.push(pid);
    shut_down(&engine, &pids).await;
}

fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or_default()
        / 1024
}
