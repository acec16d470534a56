//! Runs: one active run per app, the status an event implies, leases and cancellation.

use draftsmith_core::api::{CheckpointKind, MessageAttachment};
use draftsmith_core::{
    AppEventBody, ErrorCode, EventBody, EventError, InstanceId, RunStatus, Timestamp, UploadId,
    Usage, UsageTotals, UserId,
};
use draftsmith_store::prelude::*;
use draftsmith_store::{NewModelCall, SqlStore, StoreError};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice, new_run, put};

draftsmith_testkit::both_stores!(
    a_second_run_is_refused_while_one_is_active,
    a_terminal_event_sets_the_status_and_the_end,
    a_failure_is_kept_on_the_run,
    a_run_starts_with_its_message_event_and_checkpoint,
    cancellation_and_leases_follow_the_owner,
    a_batch_of_events_is_written_whole_or_not_at_all,
    a_new_run_is_answered_as_stored,
    a_run_on_the_revision_seen_is_refused_as_any_other,
    model_calls_are_numbered_and_summed_with_the_events_they_precede,
    appends_tell_watching_instances_once_committed,
    progress_keeps_one_order_whichever_instance_appends,
);

fn started() -> EventBody {
    EventBody::RunStarted {
        sandbox_id: "sbx".into(),
    }
}

async fn a_second_run_is_refused_while_one_is_active(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let first = f.run(app).await.unwrap();
    assert_eq!(first.status, RunStatus::Queued);
    assert_eq!(f.store.active_run(app).await.unwrap(), Some(first.run_id));

    let queued = f.run(app).await;
    assert!(
        matches!(queued, Err(StoreError::RunActive { run_id: Some(id) }) if id == first.run_id),
        "{queued:?}"
    );
    // The refused run's new chat session and message are not kept.
    let sessions = f.store.chat_sessions(app, &alice()).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    f.store
        .append_event(first.run_id, started(), vec![])
        .await
        .unwrap();
    assert_eq!(
        f.store.run(first.run_id).await.unwrap().status,
        RunStatus::Running
    );
    let running = f.run(app).await;
    assert!(
        matches!(running, Err(StoreError::RunActive { .. })),
        "{running:?}"
    );

    f.cancel(first.run_id).await;
    assert_eq!(f.store.active_run(app).await.unwrap(), None);
    let next = f.run(app).await.unwrap();
    assert_eq!(f.store.active_run(app).await.unwrap(), Some(next.run_id));
    // Another app is not affected.
    let other = f.app_named("Other").await;
    f.run(other).await.unwrap();
    let listed = f.store.runs(app, 10, None).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|r| r.run_id).collect();
    assert_eq!(ids, vec![next.run_id, first.run_id]);
}

async fn a_terminal_event_sets_the_status_and_the_end(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    assert!(run.started_at.is_none() && run.ended_at.is_none());
    f.store
        .append_event(run.run_id, started(), vec![])
        .await
        .unwrap();
    let running = f.store.run(run.run_id).await.unwrap();
    assert!(running.started_at.is_some() && running.ended_at.is_none());

    let delta = EventBody::AssistantMessage {
        message_id: "m1".into(),
        text: "done".into(),
    };
    let message = f
        .store
        .append_event(run.run_id, delta, vec![])
        .await
        .unwrap();
    assert_eq!(
        f.store.run(run.run_id).await.unwrap().status,
        RunStatus::Running
    );
    let completed = EventBody::RunCompleted {
        revision: 1,
        summary: "made it blue".into(),
        usage: None,
    };
    let last = f
        .store
        .append_event(run.run_id, completed, vec![])
        .await
        .unwrap();
    assert_eq!(last.seq, message.seq + 1);

    let ended = f.store.run(run.run_id).await.unwrap();
    assert_eq!(ended.status, RunStatus::Completed);
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.result_revision, Some(1));
    assert_eq!(ended.summary.as_deref(), Some("made it blue"));
    assert_eq!(ended.last_seq, last.seq);

    let late = f.store.append_event(run.run_id, started(), vec![]).await;
    assert!(matches!(late, Err(StoreError::RunEnded)), "{late:?}");
    let again = EventBody::RunPaused {
        reason: "step_limit".into(),
        usage: None,
    };
    let late = f.store.append_event(run.run_id, again, vec![]).await;
    assert!(matches!(late, Err(StoreError::RunEnded)), "{late:?}");

    let events = f.store.events_after(run.run_id, 0, 100).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=last.seq).collect::<Vec<_>>());
    let types: Vec<&str> = events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(
        types,
        [
            "run.accepted",
            "checkpoint.created",
            "run.started",
            "assistant.message",
            "run.completed"
        ]
    );
    let tail = f
        .store
        .events_after(run.run_id, last.seq - 1, 100)
        .await
        .unwrap();
    assert_eq!(tail.len(), 1);
}

async fn a_failure_is_kept_on_the_run(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    // A queued run may fail before it starts.
    let failed = EventBody::RunFailed {
        error: EventError {
            code: ErrorCode::CodingAgentModelError,
            message: "the model said no".into(),
            field: None,
            details: None,
        },
        usage: None,
    };
    f.store
        .append_event(run.run_id, failed, vec![])
        .await
        .unwrap();
    let ended = f.store.run(run.run_id).await.unwrap();
    assert_eq!(ended.status, RunStatus::Failed);
    assert!(ended.ended_at.is_some() && ended.started_at.is_none());
    let error = ended.error.unwrap();
    assert_eq!(error.code, ErrorCode::CodingAgentModelError);
    assert_eq!(error.message, "the model said no");
}

async fn a_run_starts_with_its_message_event_and_checkpoint(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    assert_eq!(run.base_revision, 1);
    assert_eq!(run.input, "make it blue");
    let messages = f.store.chat_messages(run.chat_session_id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "make it blue");
    assert_eq!(messages[0].run_id, Some(run.run_id));
    let pre_run = f
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PreRun)
        .await;
    let pre_run = pre_run.unwrap().unwrap();
    assert_eq!(pre_run.revision, 1);
    let post_run = f
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PostRun)
        .await;
    assert!(post_run.unwrap().is_none());

    let missing = f
        .store
        .create_run(new_run(draftsmith_core::AppId::new(), "x"))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound("app"))),
        "{missing:?}"
    );
}

async fn cancellation_and_leases_follow_the_owner(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let mut new = new_run(app, "go");
    let owner = InstanceId::new();
    new.owner = owner;
    let run = f.store.create_run(new).await.unwrap();
    assert!(f.store.runs_to_cancel(owner).await.unwrap().is_empty());

    f.store
        .request_cancel(run.run_id, &UserId("bob".into()))
        .await
        .unwrap();
    f.store
        .request_cancel(run.run_id, &UserId("carol".into()))
        .await
        .unwrap();
    let to_cancel = f.store.runs_to_cancel(owner).await.unwrap();
    assert_eq!(to_cancel, vec![(run.run_id, "bob".to_owned())]);
    assert!(
        f.store
            .runs_to_cancel(InstanceId::new())
            .await
            .unwrap()
            .is_empty()
    );

    // The lease is a minute ahead: not orphaned, unless this was the previous life's run.
    let now = Timestamp::now();
    assert!(f.store.orphaned_runs(None, now).await.unwrap().is_empty());
    let restarted = f.store.orphaned_runs(Some(owner), now).await.unwrap();
    assert_eq!(restarted, vec![run.run_id]);
    let later = Timestamp::from_micros(now.as_micros() + 120_000_000);
    assert_eq!(
        f.store.orphaned_runs(None, later).await.unwrap(),
        vec![run.run_id]
    );
    let until = Timestamp::from_micros(now.as_micros() + 600_000_000);
    f.store
        .renew_leases(owner, &[run.run_id], until)
        .await
        .unwrap();
    assert!(f.store.orphaned_runs(None, later).await.unwrap().is_empty());
    // Another instance's renewal does not count.
    f.store
        .renew_leases(InstanceId::new(), &[run.run_id], now)
        .await
        .unwrap();
    assert!(f.store.orphaned_runs(None, later).await.unwrap().is_empty());
}

fn delta(text: &str) -> (EventBody, Vec<draftsmith_core::Diagnostic>) {
    let body = EventBody::AssistantDelta {
        delta: text.into(),
        message_id: "m1".into(),
    };
    (body, vec![])
}

/// A batch (answer deltas and the event after them) takes consecutive sequence numbers in
/// its order, and a batch with an event the run refuses writes nothing at all.
async fn a_batch_of_events_is_written_whole_or_not_at_all(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let first = f
        .store
        .append_event(run.run_id, started(), vec![])
        .await
        .unwrap();
    let message = EventBody::AssistantMessage {
        message_id: "m1".into(),
        text: "ab".into(),
    };
    let batch = vec![delta("a"), delta("b"), (message, vec![])];
    let written = f
        .store
        .append_events(run.run_id, Vec::new(), batch)
        .await
        .unwrap();
    let seqs: Vec<i64> = written.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![first.seq + 1, first.seq + 2, first.seq + 3]);
    let stored = f
        .store
        .events_after(run.run_id, first.seq, 10)
        .await
        .unwrap();
    assert_eq!(stored, written);

    let completed = EventBody::RunCompleted {
        revision: 1,
        summary: "done".into(),
        usage: None,
    };
    let refused = vec![delta("c"), (completed, vec![]), delta("late")];
    let result = f.store.append_events(run.run_id, Vec::new(), refused).await;
    assert!(matches!(result, Err(StoreError::RunEnded)), "{result:?}");
    let after = f.store.events_after(run.run_id, 0, 100).await.unwrap();
    assert_eq!(
        after.last().map(|e| e.seq),
        Some(first.seq + 3),
        "nothing of the refused batch was written"
    );
    assert_eq!(
        f.store.run(run.run_id).await.unwrap().status,
        RunStatus::Running
    );
}

/// The run `create_run` answers is the one stored, and its log starts with `run.accepted`
/// and the `pre_run` checkpoint's `checkpoint.created`.
/// The same, whether the caller saw the draft's revision (SQLite then writes the run in
/// one call), saw an older one, or says nothing of it.
async fn a_new_run_is_answered_as_stored(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for seen in [None, Some(2), Some(1)] {
        answered_as_stored(&f, seen).await;
    }
}

async fn answered_as_stored(f: &Fixture, seen: Option<i64>) {
    let app = f.app_named(&format!("seen {seen:?}")).await;
    // A draft past its first revision: the run starts from what the app holds now.
    f.store
        .write_draft(app, None, vec![put("a.txt", "a")], &alice())
        .await
        .unwrap();
    let mut new = new_run(app, "go");
    new.seen_revision = seen;
    new.input_params = serde_json::json!({"context": {"selected_agent_contract": "x"}});
    let attachment = MessageAttachment {
        upload_id: UploadId::new(),
        name: "shot.png".into(),
        media_type: "image/png".into(),
        size: 3,
        into: Some("public/shot.png".into()),
    };
    new.attachments = vec![attachment.clone()];
    let app_events = f.store.app_events_after(app, 0, 100).await.unwrap();
    let run = f.store.create_run(new).await.unwrap();
    assert_eq!(run.base_revision, 2);
    assert_eq!(f.store.run(run.run_id).await.unwrap(), run);
    let events = f.store.events_after(run.run_id, 0, 10).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(types, vec!["run.accepted", "checkpoint.created"]);
    assert_eq!(events.last().map(|e| e.seq), Some(run.last_seq));
    assert!(
        matches!(&events[0].body, EventBody::RunAccepted { chat_session_id, .. } if *chat_session_id == run.chat_session_id),
        "{events:?}"
    );
    assert!(
        matches!(
            &events[1].body,
            EventBody::CheckpointCreated { revision: 2, .. }
        ),
        "{events:?}"
    );
    // The user's message, with its attachment, opens the new chat session.
    let messages = f.store.chat_messages(run.chat_session_id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (messages[0].run_id, messages[0].content.as_str()),
        (Some(run.run_id), "go")
    );
    assert_eq!(messages[0].attachments, vec![attachment]);
    // The app's log announces the run at its next seq.
    let announced = f.store.app_events_after(app, 0, 100).await.unwrap();
    assert_eq!(announced.len(), app_events.len() + 1);
    let last = announced.last().unwrap();
    assert_eq!(last.seq, app_events.last().map_or(0, |e| e.seq) + 1);
    assert!(
        matches!(&last.body, AppEventBody::RunAccepted { run_id, input, .. } if *run_id == run.run_id && input == "go"),
        "{last:?}"
    );
    let pre_run = f
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PreRun)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&events[1].body, EventBody::CheckpointCreated { checkpoint_id, .. } if *checkpoint_id == pre_run.id),
        "{events:?}"
    );
    let appended = f
        .store
        .append_event(run.run_id, started(), vec![])
        .await
        .unwrap();
    assert_eq!(appended.seq, run.last_seq + 1);
}

fn call(run: &draftsmith_core::api::Run, step: u64, input: u64, estimated: bool) -> NewModelCall {
    NewModelCall {
        run: run.run_id,
        app: run.app_id,
        user: run.created_by.clone(),
        model: "demo/m".into(),
        step,
        usage: Usage {
            input_tokens: input,
            output_tokens: 10,
            cache_read_tokens: 1,
            cache_write_tokens: 2,
            reasoning_tokens: 3,
        },
        cost_micro_usd: 5,
        estimated,
        ms: 7,
        at: Timestamp::now(),
    }
}

/// Model calls written with a batch are numbered in order after the run's earlier ones and
/// added to its totals, which the terminal event reports; a batch the run refuses records
/// none of its calls.
async fn model_calls_are_numbered_and_summed_with_the_events_they_precede(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    f.store
        .append_event(run.run_id, started(), vec![])
        .await
        .unwrap();
    let calls = vec![call(&run, 0, 100, false), call(&run, 1, 200, true)];
    f.store
        .append_events(run.run_id, calls, vec![delta("a"), delta("b")])
        .await
        .unwrap();
    // Calls alone, then calls before an event that moves the status.
    f.store
        .append_events(run.run_id, vec![call(&run, 2, 300, false)], Vec::new())
        .await
        .unwrap();
    let completed = EventBody::RunCompleted {
        revision: 1,
        summary: "done".into(),
        usage: None,
    };
    let ended = f
        .store
        .append_events(
            run.run_id,
            vec![call(&run, 3, 400, false)],
            vec![(completed, vec![])],
        )
        .await
        .unwrap();
    let expected = UsageTotals {
        input_tokens: 1000,
        output_tokens: 40,
        cache_read_tokens: 4,
        cache_write_tokens: 8,
        reasoning_tokens: 12,
        cost_micro_usd: 20,
        model_calls: 4,
        estimated_calls: 1,
    };
    assert_eq!(ended[0].body.usage(), Some(&expected));
    assert_eq!(f.store.run(run.run_id).await.unwrap().usage, expected);
    let recorded = f.store.model_calls(run.run_id).await.unwrap();
    let numbered: Vec<(u64, u64, u64)> = recorded
        .iter()
        .map(|c| (c.seq, c.step, c.usage.input_tokens))
        .collect();
    assert_eq!(
        numbered,
        vec![(1, 0, 100), (2, 1, 200), (3, 2, 300), (4, 3, 400)]
    );
    assert!(recorded[1].estimated && !recorded[0].estimated);

    let refused = f
        .store
        .append_events(
            run.run_id,
            vec![call(&run, 4, 500, false)],
            vec![delta("late")],
        )
        .await;
    assert!(matches!(refused, Err(StoreError::RunEnded)), "{refused:?}");
    assert_eq!(f.store.model_calls(run.run_id).await.unwrap().len(), 4);
    assert_eq!(f.store.run(run.run_id).await.unwrap().usage, expected);
}

/// Progress appended by two instances in turn keeps one gapless order; each event is
/// stored as the very text its writer serialises (one whose input and diagnostics look
/// like an envelope's app and `seq` too), and the model calls are numbered after
/// the run's earlier ones; once another instance ended the run, this one's progress is
/// refused and records nothing.
async fn progress_keeps_one_order_whichever_instance_appends(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let other = SqlStore::connect(&f.db.url).await.unwrap();
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let id = run.run_id;
    let mut written = vec![f.store.append_event(id, started(), vec![]).await.unwrap()];
    written.extend(
        other
            .append_events(id, vec![], vec![delta("x")])
            .await
            .unwrap(),
    );
    let calls = vec![call(&run, 0, 100, false), call(&run, 1, 200, true)];
    let batch = f
        .store
        .append_events(id, calls, vec![delta("a"), delta("b")])
        .await
        .unwrap();
    written.extend(batch);
    written.extend(
        other
            .append_events(id, vec![call(&run, 2, 300, false)], vec![delta("y")])
            .await
            .unwrap(),
    );
    written.extend(
        f.store
            .append_events(id, vec![], vec![delta("c"), lookalike()])
            .await
            .unwrap(),
    );

    let seqs: Vec<i64> = written.iter().map(|e| e.seq).collect();
    let first = run.last_seq + 1;
    assert_eq!(seqs, (first..first + 7).collect::<Vec<_>>());
    let read = f.store.events_after(id, run.last_seq, 100).await.unwrap();
    assert_eq!(read, written);
    let pool = sqlx::AnyPool::connect(&f.db.url).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
    )
    .bind(id.to_string())
    .bind(run.last_seq)
    .fetch_all(&pool)
    .await
    .unwrap();
    let serialised: Vec<String> = written
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(stored, serialised);
    let numbered: Vec<(u64, u64)> = f
        .store
        .model_calls(id)
        .await
        .unwrap()
        .iter()
        .map(|c| (c.seq, c.usage.input_tokens))
        .collect();
    assert_eq!(numbered, vec![(1, 100), (2, 200), (3, 300)]);
    assert_eq!(f.store.run(id).await.unwrap().usage.model_calls, 3);

    let failed = model_failed();
    other.append_event(id, failed, vec![]).await.unwrap();
    let late = f
        .store
        .append_events(id, vec![call(&run, 3, 400, false)], vec![delta("late")])
        .await;
    assert!(matches!(late, Err(StoreError::RunEnded)), "{late:?}");
    assert_eq!(f.store.model_calls(id).await.unwrap().len(), 3);
    assert_eq!(
        f.store
            .events_after(id, run.last_seq, 100)
            .await
            .unwrap()
            .len(),
        8
    );
    pool.close().await;
    other.close().await;
}

/// A tool call whose input, and a diagnostic whose message, hold what an event's envelope
/// says of its app and `seq`, in the very form the envelope writes it (a store that fills
/// those in by searching the text must not take either for the envelope's).
fn lookalike() -> (EventBody, Vec<draftsmith_core::Diagnostic>) {
    let nil = "00000000-0000-0000-0000-000000000000";
    let (seq, text) = (
        i64::MIN,
        format!("\"app_id\":\"{nil}\",\"seq\":{}", i64::MIN),
    );
    let body = EventBody::ToolStarted {
        tool_call_id: "c1".into(),
        tool: "write".into(),
        input: serde_json::json!({"app_id": nil, "seq": seq}),
        paths: vec![text.clone()],
    };
    let diagnostic = draftsmith_core::Diagnostic {
        code: "lookalike".into(),
        message: text,
    };
    (body, vec![diagnostic])
}

/// `run.failed` with a model error.
fn model_failed() -> EventBody {
    EventBody::RunFailed {
        error: EventError {
            code: ErrorCode::CodingAgentModelError,
            message: "boom".into(),
            field: None,
            details: None,
        },
        usage: None,
    }
}

/// The payload of the next notification, waiting a few seconds at most.
async fn next(listener: &mut sqlx::postgres::PgListener) -> String {
    let wait = std::time::Duration::from_secs(5);
    let notification = tokio::time::timeout(wait, listener.recv()).await;
    notification.unwrap().unwrap().payload().to_owned()
}

/// Waits a moment for a notification that should not come.
async fn quiet(listener: &mut sqlx::postgres::PgListener) -> bool {
    let wait = std::time::Duration::from_millis(300);
    tokio::time::timeout(wait, listener.recv()).await.is_err()
}

/// `by` watches `run` for `seconds` from now (negative: a watch that has lapsed).
async fn watch(f: &Fixture, by: InstanceId, run: draftsmith_core::RunId, seconds: i64) {
    let until = Timestamp::from_micros(Timestamp::now().as_micros() + seconds * 1_000_000);
    f.store.watch_runs(by, &[run], until).await.unwrap();
}

/// On PostgreSQL each append notifies `run_id:seq:owner` of its last event as it commits,
/// while another instance watches the run (its followers read the log on it; the owner's
/// own are told in process): not before a watch, not on the owner's own watch, not after
/// the watch lapsed, and not for a refused append.
async fn appends_tell_watching_instances_once_committed(kind: StoreKind) {
    if kind != StoreKind::Postgres {
        return;
    }
    let f = Fixture::new(kind).await;
    let mut listener = sqlx::postgres::PgListener::connect(&f.db.url)
        .await
        .unwrap();
    listener
        .listen(draftsmith_store::RUN_EVENTS_CHANNEL)
        .await
        .unwrap();
    let elsewhere = InstanceId::new();
    let app = f.app().await;
    let new = new_run(app, "make it blue");
    let owner = new.owner;
    let run = f.store.create_run(new).await.unwrap();
    let id = run.run_id;
    f.store.append_event(id, started(), vec![]).await.unwrap();
    assert!(quiet(&mut listener).await, "nobody watches the run yet");
    // The owner's own followers hear of its events in process: its watch changes nothing.
    watch(&f, owner, id, 30).await;
    f.store
        .append_event(id, delta("a").0, vec![])
        .await
        .unwrap();
    assert!(quiet(&mut listener).await, "the owner watched its own run");
    watch(&f, elsewhere, id, 30).await;
    let batch = vec![delta("b"), delta("c")];
    let calls = vec![call(&run, 0, 1, false)];
    f.store.append_events(id, calls, batch).await.unwrap();
    assert_eq!(next(&mut listener).await, format!("{id}:6:{owner}"));
    let failed = model_failed();
    f.store.append_event(id, failed, vec![]).await.unwrap();
    assert_eq!(next(&mut listener).await, format!("{id}:7:{owner}"));
    let refused = f.store.append_event(id, started(), vec![]).await;
    assert!(matches!(refused, Err(StoreError::RunEnded)), "{refused:?}");
    assert!(
        quiet(&mut listener).await,
        "a refused append notifies nothing"
    );

    // A watch that lapsed announces nothing more; a renewed one does again.
    let second = f.app_named("Second").await;
    let new = new_run(second, "again");
    let owner = new.owner;
    let id = f.store.create_run(new).await.unwrap().run_id;
    watch(&f, elsewhere, id, -1).await;
    f.store.append_event(id, started(), vec![]).await.unwrap();
    assert!(quiet(&mut listener).await, "the watch had lapsed");
    watch(&f, elsewhere, id, 30).await;
    f.store
        .append_event(id, delta("d").0, vec![])
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, format!("{id}:4:{owner}"));
}

/// A run whose caller saw the draft's revision is refused as any other: while the app has
/// an active run, and in a chat session that is not the user's on the app; nothing of it
/// is kept.
async fn a_run_on_the_revision_seen_is_refused_as_any_other(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let seen = |input: &str| {
        let mut new = new_run(app, input);
        new.seen_revision = Some(1);
        new
    };
    let first = f.store.create_run(seen("first")).await.unwrap();
    assert_eq!(first.base_revision, 1);
    let refused = f.store.create_run(seen("second")).await;
    assert!(
        matches!(refused, Err(StoreError::RunActive { run_id: Some(id) }) if id == first.run_id),
        "{refused:?}"
    );
    let sessions = f.store.chat_sessions(app, &alice()).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    f.cancel(first.run_id).await;

    // Bob's run in alice's session, and alice's in a session of another app.
    let mut bobs = seen("bob's");
    bobs.chat_session = Some(first.chat_session_id);
    bobs.user = UserId("bob".into());
    let other = f.app_named("Other").await;
    let mut elsewhere = new_run(other, "elsewhere");
    elsewhere.chat_session = Some(first.chat_session_id);
    elsewhere.seen_revision = Some(1);
    for new in [bobs, elsewhere] {
        let refused = f.store.create_run(new).await;
        assert!(
            matches!(refused, Err(StoreError::NotFound("chat session"))),
            "{refused:?}"
        );
    }
    for app in [app, other] {
        assert_eq!(f.store.active_run(app).await.unwrap(), None);
        assert_eq!(
            f.store.runs(app, 10, None).await.unwrap().len(),
            usize::from(app != other)
        );
    }
    let messages = f.store.chat_messages(first.chat_session_id).await.unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // Alice's own continues it.
    let mut continued = seen("again");
    continued.chat_session = Some(first.chat_session_id);
    let again = f.store.create_run(continued).await.unwrap();
    assert_eq!(again.chat_session_id, first.chat_session_id);
}
