//! A run's ending survives a crash at its worst moment, on both stores: the service (a child
//! process) is killed with SIGKILL right after the landing commits, and after a restart the
//! run's records describe the draft and its revert needs no force. Runs ended as orphans by
//! a restart have their sandboxes stopped, as any failed run does.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use draftsmith_core::api::{CheckpointKind, CheckpointList, Draft, Restored, Run};
use draftsmith_core::{ErrorCode, EventBody, RunStatus};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_runner::CRASH_AFTER_LANDING;
use draftsmith_testkit::sse::{EventReader, assert_well_formed, collect};
use draftsmith_testkit::{StoreKind, TestDb};
use serde_json::json;

use crate::both_stores;
use crate::instances::{config_file, slow_model, start_with, wait_for_status};
use crate::runs::{MULTI_STEP, new_app, start_run};

both_stores!(
    a_kill_at_the_landing_commit_leaves_consistent_records,
    a_restart_stops_the_sandboxes_of_orphaned_runs
);

async fn a_kill_at_the_landing_commit_leaves_consistent_records(kind: StoreKind) {
    let model = MockModel::start(Script::from_json(MULTI_STEP).unwrap())
        .await
        .unwrap();
    let db = TestDb::new(kind).await;
    let config = config_file(db.dir.path(), &model);
    let data = db.dir.path().join("node");
    let doomed = start_with(&db, &data, &config, &[(CRASH_AFTER_LANDING, "1")]).await;
    let app = new_app(&doomed.admin(), "static").await;
    let before: Draft = doomed
        .admin()
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    let run = start_run(&doomed.admin(), &app, json!({"input": "add a greeting"})).await;
    // The hook kills the process the moment the landing transaction has committed.
    let status = doomed.wait_for_exit(Duration::from_secs(60)).await;
    assert_eq!(status.signal(), Some(9), "killed by the hook: {status:?}");

    let second = start_with(&db, &data, &config, &[]).await;
    let admin = second.admin();
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert!(draft.revision > before.revision, "the sync committed");
    assert!(draft.files.iter().any(|f| f.path == "src/Hello.jsx"));
    let ended: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(ended.status, RunStatus::Completed, "{:?}", ended.error);
    assert_eq!(ended.result_revision, Some(draft.revision));
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    let synced = events.iter().find_map(|e| match &e.body {
        EventBody::DraftSynced {
            revision, added, ..
        } => Some((*revision, added.clone())),
        _ => None,
    });
    assert_eq!(synced, Some((draft.revision, vec!["src/Hello.jsx".into()])));
    let post_run = events.iter().find_map(|e| match &e.body {
        EventBody::CheckpointCreated {
            kind,
            revision,
            checkpoint_id,
        } if kind == "post_run" => Some((*revision, checkpoint_id.clone())),
        _ => None,
    });
    let (post_revision, post_id) = post_run.expect("a post_run checkpoint event");
    assert_eq!(post_revision, draft.revision);
    let listed: CheckpointList = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/checkpoints", app.id),
            200,
        )
        .await;
    let stored = listed.checkpoints.iter().find(|c| c.id == post_id);
    assert_eq!(
        stored.map(|c| (c.kind, c.revision, c.run_id)),
        Some((CheckpointKind::PostRun, draft.revision, Some(run.run_id)))
    );
    match &events.last().unwrap().body {
        EventBody::RunCompleted { revision, .. } => assert_eq!(*revision, draft.revision),
        other => panic!("the log ends with {other:?}"),
    }
    // The run's own files are not "changed after the run": the revert needs no force.
    let reverted: Restored = admin
        .post(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/revert",
                app.id, run.run_id
            ),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(reverted.changes.deleted, ["src/Hello.jsx"]);
    let after: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(after.files, before.files);
}

async fn a_restart_stops_the_sandboxes_of_orphaned_runs(kind: StoreKind) {
    let model = slow_model().await;
    let db = TestDb::new(kind).await;
    let config = config_file(db.dir.path(), &model);
    let data = db.dir.path().join("node");
    let first = start_with(&db, &data, &config, &[]).await;
    let app = new_app(&first.admin(), "static").await;
    let run = start_run(&first.admin(), &app, json!({"input": "talk slowly"})).await;
    let mut reader = EventReader::open(&first.admin(), &run.stream_url, None).await;
    while reader.next().await.unwrap().body.event_type() != "assistant.delta" {}
    drop(reader);
    let sandbox = data
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id));
    assert!(sandbox.is_dir(), "the run's sandbox is on disk");
    first.kill().await;
    assert!(sandbox.is_dir(), "a crash leaves the sandbox behind");

    let second = start_with(&db, &data, &config, &[]).await;
    let ended = wait_for_status(&second.admin(), &run, RunStatus::Failed).await;
    assert_eq!(
        ended.error.map(|e| e.code),
        Some(ErrorCode::CodingAgentRunOrphaned)
    );
    // Stopped before the terminal event, not left until its TTL.
    assert!(!sandbox.exists(), "the orphan's sandbox was stopped");
}
