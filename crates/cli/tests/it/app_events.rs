//! The app event stream: runs accepted and ended, queue changes and draft revisions in one
//! gapless, resumable log per app.

use draftsmith_core::{AppEvent, AppEventBody, RunStatus};
use draftsmith_testkit::sse::AppEventReader;
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::json;

use crate::both_stores;
use crate::queue::{QUEUE_SCRIPT, enqueue, wait_drained};
use crate::runs::{new_app, start_run};

both_stores!(app_stream_resumes_without_gaps_after_a_cut);

fn names(events: &[AppEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.body.event_type()).collect()
}

async fn app_stream_resumes_without_gaps_after_a_cut(kind: StoreKind) {
    let server = TestServer::with_script(kind, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let mut reader = AppEventReader::open(&admin, app.id, None).await;
    let first = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    enqueue(&admin, &app, "one").await;
    let mut before = reader
        .until(|e| matches!(&e.body, AppEventBody::QueueChanged { items } if items.len() == 1))
        .await;
    // The client goes away; the app goes on without it.
    drop(reader);
    enqueue(&admin, &app, "two").await;
    let runs = wait_drained(&admin, &app, 3).await;
    let file = format!("/admin/apps/{}/draft/files/notes.md", app.id);
    admin.put_bytes(&file, "# notes\n", Some("*"), 200).await;
    let is_last = |e: &AppEvent| matches!(e.body, AppEventBody::DraftRevised { revision, .. } if revision > 1);
    let resumed_after = before.last().unwrap().seq;
    let mut resumed = AppEventReader::open(&admin, app.id, Some(resumed_after)).await;
    before.extend(resumed.until(is_last).await);
    // Exactly what a fresh reader replays from the start: no gap, no duplicate.
    let full = AppEventReader::open(&admin, app.id, None)
        .await
        .until(is_last)
        .await;
    assert_eq!(before, full);
    let seqs: Vec<i64> = full.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=full.len() as i64).collect::<Vec<_>>());
    // Each run is accepted and ended once, in order, and the queue drains.
    let lifecycle: Vec<(&str, String)> = full
        .iter()
        .filter_map(|e| match &e.body {
            AppEventBody::RunAccepted { input, .. } => Some(("accepted", input.clone())),
            AppEventBody::RunEnded { run_id, status } => {
                assert_eq!(*status, RunStatus::Completed);
                let run = runs.iter().find(|r| r.run_id == *run_id).unwrap();
                Some(("ended", run.input.clone()))
            }
            _ => None,
        })
        .collect();
    let expected: Vec<(&str, String)> = ["talk slowly", "one", "two"]
        .into_iter()
        .flat_map(|i| [("accepted", i.to_owned()), ("ended", i.to_owned())])
        .collect();
    assert_eq!(lifecycle, expected);
    assert_eq!(runs[0].run_id, first.run_id);
    let queue_sizes: Vec<usize> = full
        .iter()
        .filter_map(|e| match &e.body {
            AppEventBody::QueueChanged { items } => Some(items.len()),
            _ => None,
        })
        .collect();
    assert_eq!(queue_sizes, [1, 2, 1, 0]);
    assert!(names(&full).contains(&"draft.revised"));
}

both_stores!(a_follower_of_an_idle_app_sees_its_next_change);

/// A follower that found nothing new for a while (on SQLite it waits for the store's next
/// write instead of re-reading on a timer) still gets the next change.
async fn a_follower_of_an_idle_app_sees_its_next_change(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let mut reader = AppEventReader::open(&admin, app.id, None).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let file = format!("/admin/apps/{}/draft/files/notes.md", app.id);
    admin.put_bytes(&file, "# notes\n", Some("*"), 200).await;
    let seen = reader
        .until(|e| matches!(e.body, AppEventBody::DraftRevised { revision: 2, .. }))
        .await;
    let seqs: Vec<i64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seen.len() as i64).collect::<Vec<_>>());
}
