//! Chat sessions: scoped to their app and user, messages in order.

use draftsmith_core::UserId;
use draftsmith_core::api::{ChatRole, MessageStatus};
use draftsmith_store::StoreError;
use draftsmith_store::prelude::*;
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice, new_run};

draftsmith_testkit::both_stores!(
    messages_read_back_in_the_order_they_were_added,
    a_run_continues_only_its_users_session,
    a_chat_keeps_one_summary_replaced_in_place,
    a_new_chat_takes_the_id_made_ahead_for_it,
);

async fn a_chat_keeps_one_summary_replaced_in_place(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let session = f.run(app).await.unwrap().chat_session_id;
    assert_eq!(f.store.chat_summary(session).await.unwrap(), None);
    let first = f
        .store
        .save_chat_summary(session, "m1", "first")
        .await
        .unwrap();
    assert_eq!(f.store.chat_summary(session).await.unwrap(), Some(first));
    f.store
        .save_chat_summary(session, "m9", "second")
        .await
        .unwrap();
    let read = f.store.chat_summary(session).await.unwrap().unwrap();
    assert_eq!(
        (read.through_message_id.as_str(), read.summary.as_str()),
        ("m9", "second")
    );
}

async fn messages_read_back_in_the_order_they_were_added(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let run = f.run(app).await.unwrap();
    let session = run.chat_session_id;
    let said = ["one", "two", "three", "four"];
    for (i, text) in said.iter().enumerate() {
        let (role, status) = if i % 2 == 0 {
            (ChatRole::Assistant, MessageStatus::Partial)
        } else {
            (ChatRole::User, MessageStatus::Complete)
        };
        let message = f
            .store
            .add_chat_message(session, None, role, text, status)
            .await;
        assert_eq!(message.unwrap().role, role);
    }
    let messages = f.store.chat_messages(session).await.unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["make it blue", "one", "two", "three", "four"]);
    assert_eq!(messages[1].status, MessageStatus::Partial);
    assert_eq!(messages[1].role, ChatRole::Assistant);
    assert!(
        messages
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );

    let read = f.store.chat_session(session).await.unwrap();
    assert_eq!(read.title, "make it blue");
    assert_eq!(read.updated_at, messages[4].created_at);
}

async fn a_run_continues_only_its_users_session(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let first = f.run(app).await.unwrap();
    f.cancel(first.run_id).await;

    let mut bobs = new_run(app, "mine now");
    bobs.user = UserId("bob".into());
    bobs.chat_session = Some(first.chat_session_id);
    let refused = f.store.create_run(bobs).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound("chat session"))),
        "{refused:?}"
    );

    let mut again = new_run(app, "and now green\nwith details");
    again.chat_session = Some(first.chat_session_id);
    let second = f.store.create_run(again).await.unwrap();
    assert_eq!(second.chat_session_id, first.chat_session_id);
    let sessions = f.store.chat_sessions(app, &alice()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(
        f.store
            .chat_sessions(app, &UserId("bob".into()))
            .await
            .unwrap()
            .is_empty()
    );
    let texts: Vec<String> = f
        .store
        .chat_messages(first.chat_session_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["make it blue", "and now green\nwith details"]);
}

/// A run starting a new chat with an id chosen ahead (a chat made ahead, its sandbox ready)
/// gets a session of exactly that id; without one, a fresh id as before.
async fn a_new_chat_takes_the_id_made_ahead_for_it(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let ahead = draftsmith_core::ChatSessionId::new();
    let mut new = new_run(app, "start on the warm chat");
    new.new_chat_id = Some(ahead);
    let run = f.store.create_run(new).await.unwrap();
    assert_eq!(run.chat_session_id, ahead);
    let sessions = f.store.chat_sessions(app, &alice()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, ahead);
    assert_eq!(sessions[0].title, "start on the warm chat");
    f.cancel(run.run_id).await;
    let fresh = f.store.create_run(new_run(app, "another")).await.unwrap();
    assert_ne!(fresh.chat_session_id, ahead);
}
