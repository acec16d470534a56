//! Chat history across runs: whole recent turns after a persisted summary of the older ones,
//! written once and reused.

use draftsmith_core::api::Run;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{new_app, start_run};

both_stores!(a_long_chat_sends_one_summary_and_the_recent_turns);

const RUNS: usize = 51;
const SUMMARY: &str = "CHAT SUMMARY: the person asked for many small changes.";
/// `history_budget` of the mock model's default window (32,768 tokens).
const BUDGET_TOKENS: usize = 32_768 / 4;

fn padding(i: usize) -> String {
    format!("{i:02} {}", "detail ".repeat(42))
}

fn script() -> String {
    let turns: Vec<Value> = (1..=RUNS)
        .map(|i| json!({"steps": [{"text": format!("Answer {}", padding(i))}]}))
        .collect();
    json!({"scenarios": [
        {"name": "chat-summary", "match": {"contains": "You condense the earlier part of a chat"},
         "turns": [{"steps": [{"text": SUMMARY}]}]},
        {"name": "chat", "sequential": true, "turns": turns}
    ]})
    .to_string()
}

async fn finished_run(admin: &ApiClient, body: Value, app: &draftsmith_core::api::App) -> Run {
    let run = start_run(admin, app, body).await;
    collect(admin, &run.stream_url, None).await;
    admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await
}

async fn a_long_chat_sends_one_summary_and_the_recent_turns(kind: StoreKind) {
    let server = TestServer::with_script(kind, &script()).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let mut session = None;
    let mut model_calls = 0;
    for i in 1..=RUNS {
        let mut body = json!({"input": format!("Question {}", padding(i))});
        if let Some(session) = session {
            body["chat_session_id"] = json!(session);
        }
        let run = finished_run(&admin, body, &app).await;
        assert_eq!(
            run.summary,
            Some(format!("Answer {}", padding(i))),
            "run {i}"
        );
        session = Some(run.chat_session_id);
        model_calls += run.usage.model_calls;
    }
    let requests = server.model().requests();
    let summaries = requests.iter().filter(|r| r.scenario == "chat-summary");
    assert_eq!(summaries.count(), 1, "the summary is written once");
    // The summary's call counts in its run's usage, like every other model call.
    assert_eq!(model_calls, RUNS as u64 + 1);
    let chat: Vec<_> = requests.iter().filter(|r| r.scenario == "chat").collect();
    assert_eq!(chat.len(), RUNS);
    let last: Vec<(String, String)> = chat[RUNS - 1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            let content = m["content"].as_str().unwrap_or_default().to_owned();
            (m["role"].as_str().unwrap().to_owned(), content)
        })
        .collect();
    // The summary first, then whole recent turns, then this run's prompt.
    assert!(last[0].1.contains(SUMMARY), "{:?}", last[0]);
    assert_eq!(last[1].0, "user");
    let (prompt, history) = last.split_last().unwrap();
    assert_eq!(prompt.1, format!("Question {}", padding(RUNS)));
    assert_eq!(
        history.last().unwrap().1,
        format!("Answer {}", padding(RUNS - 1))
    );
    assert!(history.len() > 10, "{} turns", history.len());
    assert!(history.len() < 2 * (RUNS - 1), "older turns are summarised");
    for turn in &history[1..] {
        assert!(turn.1.starts_with("Question ") || turn.1.starts_with("Answer "));
        assert!(turn.1.ends_with("detail "), "turns are whole");
    }
    let tokens: usize = history.iter().map(|t| t.1.len().div_ceil(3) + 8).sum();
    assert!(tokens <= BUDGET_TOKENS, "{tokens} tokens");
    // The summary is the chat's, persisted.
    let stored = server
        .store
        .chat_summary(session.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.summary, SUMMARY);
    // Every run after the summary was written carried it.
    let first = chat
        .iter()
        .position(|r| r.body.to_string().contains(SUMMARY))
        .unwrap();
    assert!(
        first > 20 && first < RUNS - 1,
        "first summarised run: {first}"
    );
    assert!(
        chat[first..]
            .iter()
            .all(|r| r.body.to_string().contains(SUMMARY))
    );
}
