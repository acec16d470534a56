//! The prompt queue: FIFO per app under concurrency, one start per prompt (the claim and
//! the one-active-run index in one transaction), moves, removals, holds and ownership.

use std::collections::HashSet;
use std::sync::Arc;

use draftsmith_core::api::QueuedPrompt;
use draftsmith_core::{
    AppId, EngineKind, ErrorCode, EventBody, EventError, InstanceId, RunId, Timestamp,
};
use draftsmith_store::prelude::*;
use draftsmith_store::{NewQueued, NextRun, QueueTarget, SqlStore, StoreError};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice};

draftsmith_testkit::both_stores!(
    queued_prompts_start_in_order_only_when_idle,
    concurrent_enqueues_keep_order_and_start_once,
    move_and_remove_reorder_the_queue,
    a_failed_run_holds_the_queue_until_resumed,
    another_users_session_is_refused_at_enqueue,
);

fn queued(app: AppId, input: &str) -> NewQueued {
    NewQueued {
        app,
        user: alice(),
        chat_session: None,
        engine: EngineKind::Native,
        requested_model_id: "auto".into(),
        resolved_model_id: "demo".into(),
        input: input.into(),
    }
}

fn next(app: AppId, hold: bool) -> NextRun {
    NextRun {
        app,
        owner: InstanceId::new(),
        lease_until: Timestamp::from_micros(Timestamp::now().as_micros() + 60_000_000),
        input_params: serde_json::json!({}),
        hold_after_failure: hold,
    }
}

async fn end(store: &SqlStore, run: RunId, failed: bool) {
    let body = if failed {
        EventBody::RunFailed {
            error: EventError {
                code: ErrorCode::CodingAgentModelError,
                message: "no".into(),
                field: None,
                details: None,
            },
            usage: None,
        }
    } else {
        EventBody::RunCancelled {
            by: "alice".into(),
            usage: None,
        }
    };
    store.append_event(run, body, vec![]).await.unwrap();
}

fn inputs(items: &[QueuedPrompt]) -> Vec<&str> {
    items.iter().map(|i| i.input.as_str()).collect()
}

async fn queued_prompts_start_in_order_only_when_idle(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let active = f.run(app).await.unwrap();
    for (n, input) in ["one", "two", "three"].into_iter().enumerate() {
        let item = f.store.enqueue(queued(app, input)).await.unwrap();
        assert_eq!(item.position, n as i64 + 1);
    }
    // Nothing starts while a run is active.
    assert!(
        f.store
            .start_next_queued(next(app, false))
            .await
            .unwrap()
            .is_none()
    );
    assert!(f.store.apps_with_waiting_queue().await.unwrap().is_empty());
    end(&f.store, active.run_id, false).await;
    assert_eq!(f.store.apps_with_waiting_queue().await.unwrap(), [app]);
    let mut started = Vec::new();
    while let Some(run) = f.store.start_next_queued(next(app, false)).await.unwrap() {
        // The next one waits for this one.
        assert!(
            f.store
                .start_next_queued(next(app, false))
                .await
                .unwrap()
                .is_none()
        );
        let rest = f.store.queue(app, false).await.unwrap().items;
        let positions: Vec<i64> = rest.iter().map(|i| i.position).collect();
        assert_eq!(positions, (1..=rest.len() as i64).collect::<Vec<_>>());
        started.push(run.input.clone());
        end(&f.store, run.run_id, false).await;
    }
    assert_eq!(started, ["one", "two", "three"]);
    assert!(f.store.queue(app, false).await.unwrap().items.is_empty());
}

async fn concurrent_enqueues_keep_order_and_start_once(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let active = f.run(app).await.unwrap();
    let store = Arc::new(f.store.clone());
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let item = store.enqueue(queued(app, &format!("p{n}"))).await.unwrap();
            (item.created_at, item.position, item.input)
        }));
    }
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.push(task.await.unwrap());
    }
    // Acceptance order (the order positions were handed out) is the queue's order.
    accepted.sort_by_key(|(_, position, _)| *position);
    let positions: Vec<i64> = accepted.iter().map(|a| a.1).collect();
    assert_eq!(positions, (1..=20).collect::<Vec<_>>());
    let queue = f.store.queue(app, false).await.unwrap().items;
    let expected: Vec<&str> = accepted.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(inputs(&queue), expected);
    end(&f.store, active.run_id, false).await;
    // Two "instances" race to start every prompt; each starts exactly once, in order.
    let mut started = Vec::new();
    loop {
        let (a, b) = tokio::join!(
            store.start_next_queued(next(app, false)),
            store.start_next_queued(next(app, false))
        );
        let runs: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert!(runs.len() <= 1, "two prompts started at once");
        let Some(run) = runs.into_iter().next() else {
            break;
        };
        started.push(run.input.clone());
        end(&f.store, run.run_id, false).await;
    }
    assert_eq!(started, expected);
    let unique: HashSet<&String> = started.iter().collect();
    assert_eq!(unique.len(), 20);
}

async fn move_and_remove_reorder_the_queue(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let active = f.run(app).await.unwrap();
    let mut ids = Vec::new();
    for input in ["a", "b", "c", "d"] {
        ids.push(f.store.enqueue(queued(app, input)).await.unwrap().id);
    }
    let moved = f
        .store
        .move_queued(app, ids[3], QueueTarget::Before(ids[0]))
        .await
        .unwrap();
    assert_eq!(inputs(&moved), ["d", "a", "b", "c"]);
    let moved = f
        .store
        .move_queued(app, ids[3], QueueTarget::Position(3))
        .await
        .unwrap();
    assert_eq!(inputs(&moved), ["a", "b", "d", "c"]);
    f.store.remove_queued(app, ids[1]).await.unwrap();
    let left = f.store.queue(app, false).await.unwrap().items;
    assert_eq!(inputs(&left), ["a", "d", "c"]);
    assert_eq!(
        left.iter().map(|i| i.position).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // A started (or removed) prompt is gone: moving or removing it is a 404.
    end(&f.store, active.run_id, false).await;
    let run = f
        .store
        .start_next_queued(next(app, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.input, "a");
    let gone = f.store.remove_queued(app, ids[0]).await;
    assert!(matches!(gone, Err(StoreError::NotFound("queue item"))));
    let gone = f
        .store
        .move_queued(app, ids[1], QueueTarget::Position(1))
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound("queue item"))));
    // An item of another app is not found through this one.
    let other = f.app_named("Other").await;
    let theirs = f.store.enqueue(queued(other, "x")).await.unwrap();
    let refused = f.store.remove_queued(app, theirs.id).await;
    assert!(matches!(refused, Err(StoreError::NotFound(_))));
}

async fn a_failed_run_holds_the_queue_until_resumed(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let active = f.run(app).await.unwrap();
    f.store.enqueue(queued(app, "after")).await.unwrap();
    end(&f.store, active.run_id, true).await;
    // `continue` would go on; `hold` does not, until resumed.
    assert!(f.store.queue(app, true).await.unwrap().held);
    assert!(!f.store.queue(app, false).await.unwrap().held);
    assert!(
        f.store
            .start_next_queued(next(app, true))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(f.store.queue(app, true).await.unwrap().items.len(), 1);
    f.store.resume_queue(app).await.unwrap();
    assert!(!f.store.queue(app, true).await.unwrap().held);
    let run = f
        .store
        .start_next_queued(next(app, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.input, "after");
    // The next failure holds again.
    f.store.enqueue(queued(app, "later")).await.unwrap();
    end(&f.store, run.run_id, true).await;
    assert!(
        f.store
            .start_next_queued(next(app, true))
            .await
            .unwrap()
            .is_none()
    );
}

async fn another_users_session_is_refused_at_enqueue(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let mut theirs = queued(app, "x");
    theirs.user = draftsmith_core::UserId("mallory".into());
    theirs.chat_session = Some(run.chat_session_id);
    let refused = f.store.enqueue(theirs).await;
    assert!(matches!(refused, Err(StoreError::NotFound("chat session"))));
    let mut mine = queued(app, "y");
    mine.chat_session = Some(run.chat_session_id);
    let item = f.store.enqueue(mine).await.unwrap();
    assert_eq!(item.chat_session_id, Some(run.chat_session_id));
    assert_eq!(f.store.queue(app, false).await.unwrap().items.len(), 1);
}
