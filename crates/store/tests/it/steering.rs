//! Steering messages: saved as a chat message and a `user.message` event, claimed once by
//! the instance that owns the run, refused once the run is terminal.

use draftsmith_core::api::ChatRole;
use draftsmith_core::{EventBody, InstanceId};
use draftsmith_store::StoreError;
use draftsmith_store::prelude::*;
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, new_run};

draftsmith_testkit::both_stores!(messages_are_saved_and_claimed_once_by_the_owner);

async fn messages_are_saved_and_claimed_once_by_the_owner(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let new = new_run(app, "build it");
    let owner = new.owner;
    let run = f.store.create_run(new).await.unwrap();
    let first = f.store.steer(run.run_id, "make it blue").await.unwrap();
    let second = f.store.steer(run.run_id, "and round").await.unwrap();
    assert_eq!(second.seq, first.seq + 1);
    let EventBody::UserMessage { message_id, text } = &first.body else {
        panic!("{first:?}");
    };
    assert_eq!(text, "make it blue");
    let chat = f.store.chat_messages(run.chat_session_id).await.unwrap();
    let saved: Vec<_> = chat.iter().map(|m| (m.role, m.content.as_str())).collect();
    assert_eq!(
        saved,
        [
            (ChatRole::User, "build it"),
            (ChatRole::User, "make it blue"),
            (ChatRole::User, "and round")
        ]
    );
    assert_eq!(&chat[1].id, message_id);
    assert_eq!(chat[1].run_id, Some(run.run_id));

    // Another instance claims nothing; the owner claims both, in order, once.
    assert!(
        f.store
            .claim_steering(InstanceId::new())
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = f.store.claim_steering(owner).await.unwrap();
    let texts: Vec<_> = claimed.iter().map(|s| (s.run, s.text.as_str())).collect();
    assert_eq!(
        texts,
        [(run.run_id, "make it blue"), (run.run_id, "and round")]
    );
    assert!(f.store.claim_steering(owner).await.unwrap().is_empty());

    // A terminal run takes no message, and nothing of it is saved.
    f.cancel(run.run_id).await;
    let late = f.store.steer(run.run_id, "too late").await;
    assert!(matches!(late, Err(StoreError::RunEnded)), "{late:?}");
    let after = f.store.chat_messages(run.chat_session_id).await.unwrap();
    assert_eq!(after.len(), 3);
}
