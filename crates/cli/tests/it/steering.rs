//! Steering a running run over real HTTP: a message reaches the scripted model's next
//! request and the chat history, one sent while the model gives its final answer gets one
//! more turn, one posted to another instance reaches the owner, OpenCode (the real one)
//! takes it as its session's next prompt, and ended runs (409) and other users' runs (404)
//! refuse it.

use draftsmith_core::api::{App, ChatMessage, ChatRole, ChatSessionDetail, Run, TokenCreated};
use draftsmith_core::{EventBody, RunEvent, RunStatus};
use draftsmith_mockmodel::{MockModel, RecordedRequest, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::sse::{EventReader, assert_well_formed};
use draftsmith_testkit::{ApiClient, StoreKind, TestDb, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::instances::{config_file, start_with};
use crate::runs::{new_app, start_run};

const STEERING: &str = include_str!("../fixtures/scripts/steering.json");

both_stores!(
    a_message_reaches_the_next_model_turn_and_the_chat,
    a_message_during_the_final_answer_gets_one_more_turn,
    ended_and_foreign_runs_refuse_messages,
    an_opencode_run_takes_a_message_as_its_sessions_next_prompt,
);

fn messages_url(run: &Run) -> String {
    format!(
        "/admin/apps/{}/coding-agent/runs/{}/messages",
        run.app_id, run.run_id
    )
}

/// Sends `text` to `run` (202) and checks the `user.message` event it answers.
async fn steer(client: &ApiClient, run: &Run, text: &str) -> RunEvent {
    let event: RunEvent = client
        .post(&messages_url(run), &json!({ "text": text }), 202)
        .await;
    match &event.body {
        EventBody::UserMessage { text: sent, .. } => assert_eq!(sent, text),
        other => panic!("answered {other:?}"),
    }
    event
}

/// Starts `input` and waits for its first answer text, so the model is mid-turn.
async fn started(admin: &ApiClient, app: &App, input: &str) -> (Run, EventReader, Vec<RunEvent>) {
    let run = start_run(admin, app, json!({ "input": input })).await;
    let mut reader = EventReader::open(admin, &run.stream_url, None).await;
    let mut seen = Vec::new();
    while let Some(event) = reader.next().await {
        let delta = event.body.event_type() == "assistant.delta";
        seen.push(event);
        if delta {
            return (run, reader, seen);
        }
    }
    panic!("the run ended before answering: {seen:#?}");
}

fn requests_of(model: &MockModel, scenario: &str) -> Vec<RecordedRequest> {
    model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == scenario)
        .collect()
}

fn mentions(request: &RecordedRequest, text: &str) -> bool {
    request.body.to_string().contains(text)
}

async fn chat(client: &ApiClient, run: &Run) -> Vec<ChatMessage> {
    let url = format!(
        "/admin/apps/{}/coding-agent/chat-sessions/{}",
        run.app_id, run.chat_session_id
    );
    let detail: ChatSessionDetail = client.get(&url, 200).await;
    detail.messages
}

fn roles(messages: &[ChatMessage]) -> Vec<(ChatRole, &str)> {
    messages
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect()
}

async fn a_message_reaches_the_next_model_turn_and_the_chat(kind: StoreKind) {
    let server = TestServer::with_script(kind, STEERING).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (run, reader, mut events) = started(&admin, &app, "steer during tools").await;
    let note = "Make the heading blue, please.";
    let sent = steer(&admin, &run, note).await;
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    let last = events.last().unwrap();
    assert_eq!(last.body.event_type(), "run.completed", "{last:?}");
    // The event stream carries the message where it was accepted.
    assert!(
        events.contains(&sent),
        "user.message missing from the stream"
    );

    let requests = requests_of(server.model(), "during-tools");
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(!mentions(&requests[0], note));
    assert_eq!(requests[1].turn, 1);
    assert!(mentions(&requests[1], note), "{:#}", requests[1].body);
    assert!(server.model().violations().is_empty());

    let messages = chat(&admin, &run).await;
    assert_eq!(
        roles(&messages),
        [
            (ChatRole::User, "steer during tools"),
            (ChatRole::User, note),
            (
                ChatRole::Assistant,
                "Looking around.\n\nDone, with your note."
            ),
        ]
    );
    assert!(messages.iter().all(|m| m.run_id == Some(run.run_id)));
    match &sent.body {
        EventBody::UserMessage { message_id, .. } => assert_eq!(message_id, &messages[1].id),
        _ => unreachable!(),
    }
}

async fn a_message_during_the_final_answer_gets_one_more_turn(kind: StoreKind) {
    let server = TestServer::with_script(kind, STEERING).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (run, reader, mut events) = started(&admin, &app, "steer after answer").await;
    let note = "One more thing: add a footer.";
    steer(&admin, &run, note).await;
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    let answers: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::AssistantMessage { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(answers, ["First answer.", "Second answer."]);
    match &events.last().unwrap().body {
        EventBody::RunCompleted { summary, .. } => assert_eq!(summary, "Second answer."),
        other => panic!("ended with {other:?}"),
    }
    let requests = requests_of(server.model(), "after-answer");
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(mentions(&requests[1], note));
    assert!(mentions(&requests[1], "First answer."));
}

async fn ended_and_foreign_runs_refuse_messages(kind: StoreKind) {
    let server = TestServer::with_script(kind, STEERING).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (run, reader, _) = started(&admin, &app, "steer during tools").await;
    let url = messages_url(&run);
    for bad in [
        json!({"text": "  "}),
        json!({"text": "x".repeat(100_001)}),
        json!({"text": 1}),
        json!({"text": "a", "more": 1}),
    ] {
        let refused: Value = admin.post(&url, &bad, 400).await;
        assert_error(&refused, "VALIDATION_FAILED");
    }
    // A builder cannot see the app; another admin sees it but not the run's conversation.
    for (user, role) in [("bob", "builder"), ("ops", "admin")] {
        let token: TokenCreated = admin
            .post("/admin/tokens", &json!({"user": user, "role": role}), 201)
            .await;
        let other = admin.with_token(&token.token);
        let hidden: Value = other.post(&url, &json!({"text": "hi"}), 404).await;
        assert_error(&hidden, "NOT_FOUND");
    }
    let missing = format!(
        "/admin/apps/{}/coding-agent/runs/{}/messages",
        app.id,
        uuid::Uuid::new_v4()
    );
    let none: Value = admin.post(&missing, &json!({"text": "hi"}), 404).await;
    assert_error(&none, "NOT_FOUND");
    reader.rest().await;
    let ended: Value = admin.post(&url, &json!({"text": "too late"}), 409).await;
    assert_error(&ended, "CODING_AGENT_RUN_NOT_ACTIVE");
    assert_eq!(ended["error"]["details"]["status"], "completed");
    // Nothing refused reached the conversation.
    let messages = chat(&admin, &run).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let ended: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(ended.status, RunStatus::Completed);
}

/// A message posted to an instance that does not execute the run reaches the one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_through_another_instance_reaches_the_owner() {
    let model = MockModel::start(Script::from_json(STEERING).unwrap())
        .await
        .unwrap();
    let db = TestDb::new(StoreKind::Postgres).await;
    let config = config_file(db.dir.path(), &model);
    let one = start_with(&db, &db.dir.path().join("one"), &config, &[]).await;
    let two = start_with(&db, &db.dir.path().join("two"), &config, &[]).await;
    let app = new_app(&one.admin(), "static").await;
    let (run, reader, mut events) = started(&one.admin(), &app, "steer during tools").await;
    let note = "Sent through the other instance.";
    steer(&two.admin(), &run, note).await;
    events.extend(reader.rest().await);
    assert_eq!(events.last().unwrap().body.event_type(), "run.completed");
    let requests: Vec<_> = model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == "during-tools")
        .collect();
    assert_eq!(requests.len(), 2);
    assert!(mentions(&requests[1], note), "{:#}", requests[1].body);
}

async fn an_opencode_run_takes_a_message_as_its_sessions_next_prompt(kind: StoreKind) {
    let server = TestServer::with_script(kind, STEERING).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let input = json!({"input": "steer after answer", "engine": "opencode"});
    let run = start_run(&admin, &app, input).await;
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        let delta = event.body.event_type() == "assistant.delta";
        events.push(event);
        if delta {
            break;
        }
    }
    let note = "One more thing: add a footer.";
    steer(&admin, &run, note).await;
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    match &events.last().unwrap().body {
        EventBody::RunCompleted { summary, .. } => assert_eq!(summary, "Second answer."),
        other => panic!("ended with {other:?}: {events:#?}"),
    }
    // The second request is the same conversation, continued by the message.
    let requests = requests_of(server.model(), "after-answer");
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(!mentions(&requests[0], note));
    assert_eq!(requests[1].turn, 1);
    assert!(mentions(&requests[1], note), "{:#}", requests[1].body);
    assert!(mentions(&requests[1], "steer after answer"));
    assert!(mentions(&requests[1], "First answer."));
    let messages = chat(&admin, &run).await;
    assert_eq!(
        roles(&messages),
        [
            (ChatRole::User, "steer after answer"),
            (ChatRole::User, note),
            (ChatRole::Assistant, "First answer.\n\nSecond answer."),
        ]
    );
}
