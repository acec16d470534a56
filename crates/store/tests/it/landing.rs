//! Landing a run: everything commits together, or nothing does.

use draftsmith_core::api::{CheckpointKind, MessageStatus};
use draftsmith_core::{EventBody, RunStatus, Timestamp, Usage, UsageTotals};
use draftsmith_store::prelude::*;
use draftsmith_store::{Landing, NewModelCall, SqlStore, StoreError};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice, delete, files, pairs, put};

draftsmith_testkit::both_stores!(
    a_landing_writes_the_revision_events_checkpoint_and_message,
    a_landing_on_a_moved_draft_writes_nothing,
    a_landing_on_an_ended_run_writes_nothing,
    the_revisions_an_instance_wrote_are_known_to_it_without_a_read,
    a_landing_without_changes_ends_the_run_at_the_drafts_revision,
    a_landing_without_changes_on_an_ended_run_writes_nothing,
);

fn landing(f: &draftsmith_core::api::Run, expected: i64) -> Landing {
    let mut timing = serde_json::Map::new();
    timing.insert("engine".into(), serde_json::json!(42));
    Landing {
        app: f.app_id,
        run: f.run_id,
        expected,
        changes: vec![put("index.html", "blue")],
        author: alice(),
        message: Some((
            f.chat_session_id,
            "It is blue.".into(),
            MessageStatus::Complete,
        )),
        timing,
        ending: EventBody::RunCompleted {
            revision: 0,
            summary: "It is blue.".into(),
            usage: None,
        },
    }
}

async fn started(f: &Fixture) -> draftsmith_core::api::Run {
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let body = EventBody::RunStarted {
        sandbox_id: "sbx".into(),
    };
    f.store
        .append_event(run.run_id, body, vec![])
        .await
        .unwrap();
    run
}

/// A model call whose counts differ from each other, so totals read back under the wrong
/// names show.
fn call(run: &draftsmith_core::api::Run) -> NewModelCall {
    NewModelCall {
        run: run.run_id,
        app: run.app_id,
        user: run.created_by.clone(),
        model: "demo/m".into(),
        step: 0,
        usage: Usage {
            input_tokens: 1000,
            output_tokens: 200,
            cache_read_tokens: 30,
            cache_write_tokens: 4,
            reasoning_tokens: 50,
        },
        cost_micro_usd: 6000,
        estimated: false,
        ms: 7,
        at: Timestamp::now(),
    }
}

async fn a_landing_writes_the_revision_events_checkpoint_and_message(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let run = started(&f).await;
    let delta = EventBody::AssistantDelta {
        delta: "It".into(),
        message_id: "m1".into(),
    };
    let call = call(&run);
    let mut usage = UsageTotals::default();
    usage.add_call(&call.usage, call.cost_micro_usd, call.estimated);
    f.store
        .append_events(run.run_id, vec![call], vec![(delta, vec![])])
        .await
        .unwrap();
    let landed = f.store.land_run(landing(&run, 1)).await.unwrap();
    let write = landed.write.unwrap();
    assert_eq!(write.revision, 2);
    let types: Vec<&str> = landed.events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(
        types,
        ["draft.synced", "checkpoint.created", "run.completed"]
    );
    assert!(matches!(
        landed.events[2].body,
        EventBody::RunCompleted { revision: 2, .. }
    ));

    let ended = f.store.run(run.run_id).await.unwrap();
    assert_eq!(ended.status, RunStatus::Completed);
    assert_eq!(ended.result_revision, Some(2));
    assert!(ended.ended_at.is_some());
    assert_eq!(
        ended.timing_metrics_ms.get("engine"),
        Some(&serde_json::json!(42))
    );
    let draft = f.store.draft(run.app_id).await.unwrap();
    assert_eq!(
        files(&f.store, &draft).await,
        pairs(&[("index.html", "blue")])
    );
    let post_run = f
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PostRun)
        .await;
    assert_eq!(post_run.unwrap().unwrap().revision, 2);
    let messages = f.store.chat_messages(run.chat_session_id).await.unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["make it blue", "It is blue."]);
    let session = f.store.chat_session(run.chat_session_id).await.unwrap();
    assert_eq!(session.updated_at, messages[1].created_at);
    // The events answered are the ones stored, the ending with the run's usage, and the
    // app's log tells the run's end right after the revision's.
    let stored = f.store.events_after(run.run_id, 0, 100).await.unwrap();
    assert_eq!(stored[stored.len() - 3..], landed.events[..]);
    assert_eq!(landed.events[2].body.usage(), Some(&usage));
    assert_eq!(ended.usage, usage);
    let app_events = f.store.app_events_after(run.app_id, 0, 100).await.unwrap();
    let told: Vec<&str> = app_events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(told[told.len() - 2..], ["draft.revised", "run.ended"]);
    let seqs: Vec<i64> = app_events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
}

/// Nothing of the landing is visible: not the draft, its events, its checkpoint, its
/// message nor its timings.
async fn assert_nothing_landed(f: &Fixture, run: &draftsmith_core::api::Run, events: usize) {
    let draft = f.store.draft(run.app_id).await.unwrap();
    assert!(
        files(&f.store, &draft)
            .await
            .iter()
            .all(|(_, c)| c != "blue")
    );
    assert_eq!(
        f.store
            .events_after(run.run_id, 0, 100)
            .await
            .unwrap()
            .len(),
        events
    );
    let post_run = f
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PostRun)
        .await;
    assert!(post_run.unwrap().is_none());
    assert_eq!(
        f.store
            .chat_messages(run.chat_session_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        f.store
            .run(run.run_id)
            .await
            .unwrap()
            .timing_metrics_ms
            .is_empty()
    );
}

async fn a_landing_on_a_moved_draft_writes_nothing(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let run = started(&f).await;
    let moved = f.write(run.app_id, Some(1), vec![put("a.txt", "a")]);
    moved.await.unwrap();
    let refused = f.store.land_run(landing(&run, 1)).await;
    assert!(
        matches!(refused, Err(StoreError::RevisionConflict { current: 2 })),
        "{refused:?}"
    );
    assert_nothing_landed(&f, &run, 3).await;
    assert_eq!(
        f.store.run(run.run_id).await.unwrap().status,
        RunStatus::Running
    );
}

async fn a_landing_on_an_ended_run_writes_nothing(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let run = started(&f).await;
    f.cancel(run.run_id).await;
    // The draft write comes first in the transaction: it must be rolled back too.
    let refused = f.store.land_run(landing(&run, 1)).await;
    assert!(matches!(refused, Err(StoreError::RunEnded)), "{refused:?}");
    assert_nothing_landed(&f, &run, 4).await;
    assert_eq!(f.store.draft(run.app_id).await.unwrap().revision, 1);
    assert_eq!(
        f.store.run(run.run_id).await.unwrap().status,
        RunStatus::Cancelled
    );
}

/// The draft an app was made with and the one a landing wrote are known to the store that
/// wrote them as they were, even once another instance has moved the draft on; a store
/// that never met a revision reads the current draft instead.
async fn the_revisions_an_instance_wrote_are_known_to_it_without_a_read(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let run = started(&f).await;
    let app = run.app_id;
    let mut landing = landing(&run, 1);
    landing.changes.push(put("src/new.js", "fresh"));
    let landed = f.store.land_run(landing).await.unwrap();
    assert_eq!(landed.write.map(|w| w.revision), Some(2));

    let other = SqlStore::connect(&f.db.url).await.unwrap();
    let changes = vec![put("index.html", "green"), delete("src/new.js")];
    other
        .write_draft(app, Some(2), changes, &alice())
        .await
        .unwrap();

    let first = f.store.draft_as_of(app, 1).await.unwrap();
    assert_eq!(first.revision, 1);
    assert_eq!(
        files(&f.store, &first).await,
        pairs(&[("index.html", "v1")])
    );
    let second = f.store.draft_as_of(app, 2).await.unwrap();
    assert_eq!(second, other.manifest_at(app, 2).await.unwrap());
    assert_eq!(
        files(&f.store, &second).await,
        pairs(&[("index.html", "blue"), ("src/new.js", "fresh")])
    );
    // The other instance met neither: it reads the draft as it is now.
    let current = other.draft_as_of(app, 2).await.unwrap();
    assert_eq!(current.revision, 3);
    assert_eq!(
        files(&other, &current).await,
        pairs(&[("index.html", "green")])
    );
    other.close().await;
}

/// A landing with nothing to change, where the draft is still at the revision the run
/// expects and where another write moved it on meanwhile: either way the run ends at the
/// draft's revision, with its checkpoint, message and events, and the draft is as it was.
async fn a_landing_without_changes_ends_the_run_at_the_drafts_revision(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    for moved in [false, true] {
        let run = started(&f).await;
        let app = run.app_id;
        let revision = if moved {
            f.write(app, Some(1), vec![put("a.txt", "a")])
                .await
                .unwrap();
            2
        } else {
            1
        };
        let mut unchanged = landing(&run, 1);
        unchanged.changes.clear();
        let landed = f.store.land_run(unchanged).await.unwrap();
        assert!(landed.write.is_none());
        let types: Vec<&str> = landed.events.iter().map(|e| e.body.event_type()).collect();
        assert_eq!(
            types,
            ["checkpoint.created", "run.completed"],
            "moved: {moved}"
        );
        assert!(
            matches!(landed.events[1].body, EventBody::RunCompleted { revision: r, .. } if r == revision),
            "moved: {moved}: {:?}",
            landed.events[1].body
        );
        let stored = f.store.events_after(run.run_id, 0, 100).await.unwrap();
        assert_eq!(stored[stored.len() - 2..], landed.events[..]);
        let ended = f.store.run(run.run_id).await.unwrap();
        assert_eq!(ended.status, RunStatus::Completed);
        assert_eq!(ended.result_revision, Some(revision));
        let post_run = f
            .store
            .run_checkpoint(run.run_id, CheckpointKind::PostRun)
            .await;
        assert_eq!(post_run.unwrap().map(|c| c.revision), Some(revision));
        let messages = f.store.chat_messages(run.chat_session_id).await.unwrap();
        let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["make it blue", "It is blue."]);
        let draft = f.store.draft(app).await.unwrap();
        assert_eq!(draft.revision, revision);
        assert!(
            files(&f.store, &draft)
                .await
                .contains(&("index.html".into(), "v1".into()))
        );
        // The app's log ends with the run's end, at the next seq.
        let log = f.store.app_events_after(app, 0, 100).await.unwrap();
        let last = log.last().map(|e| e.body.event_type());
        assert_eq!(last, Some("run.ended"), "moved: {moved}");
        assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    }
}

async fn a_landing_without_changes_on_an_ended_run_writes_nothing(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let run = started(&f).await;
    f.cancel(run.run_id).await;
    let log = f.store.app_events_after(run.app_id, 0, 100).await.unwrap();
    let mut unchanged = landing(&run, 1);
    unchanged.changes.clear();
    let refused = f.store.land_run(unchanged).await;
    assert!(matches!(refused, Err(StoreError::RunEnded)), "{refused:?}");
    assert_nothing_landed(&f, &run, 4).await;
    assert_eq!(
        f.store.app_events_after(run.app_id, 0, 100).await.unwrap(),
        log
    );
    let draft = f.store.draft(run.app_id).await.unwrap();
    assert_eq!(draft.revision, 1);
    assert_eq!(
        f.store.run(run.run_id).await.unwrap().status,
        RunStatus::Cancelled
    );
}
