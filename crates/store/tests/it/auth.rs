//! Tokens and browser sessions.

use draftsmith_core::{Role, Timestamp, UserId};
use draftsmith_store::Principal;
use draftsmith_store::prelude::*;
use draftsmith_testkit::StoreKind;

use crate::support::Fixture;

draftsmith_testkit::both_stores!(
    tokens_are_found_by_hash_and_replaced_in_place,
    a_browser_session_answers_until_it_expires,
);

fn who(user: &str, role: Role) -> Principal {
    Principal {
        user_id: UserId(user.into()),
        role,
    }
}

async fn tokens_are_found_by_hash_and_replaced_in_place(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    assert_eq!(f.store.count_tokens().await.unwrap(), 0);
    f.store
        .insert_token("h1", &who("admin", Role::Admin), "first")
        .await
        .unwrap();
    f.store
        .insert_token("h2", &who("bob", Role::Builder), "bob")
        .await
        .unwrap();
    assert_eq!(f.store.count_tokens().await.unwrap(), 2);
    assert_eq!(
        f.store.find_token("h1").await.unwrap(),
        Some(who("admin", Role::Admin))
    );
    assert_eq!(f.store.find_token("nope").await.unwrap(), None);

    f.store
        .insert_token("h2", &who("carol", Role::Admin), "again")
        .await
        .unwrap();
    assert_eq!(f.store.count_tokens().await.unwrap(), 2);
    assert_eq!(
        f.store.find_token("h2").await.unwrap(),
        Some(who("carol", Role::Admin))
    );
}

async fn a_browser_session_answers_until_it_expires(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let now = Timestamp::now().as_micros();
    let expires = Timestamp::from_micros(now + 1_000_000);
    let bob = who("bob", Role::Builder);
    f.store
        .insert_web_session("s1", &bob, expires)
        .await
        .unwrap();

    let before = Timestamp::from_micros(now);
    assert_eq!(
        f.store.find_web_session("s1", before).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(f.store.find_web_session("s1", expires).await.unwrap(), None);
    let after = Timestamp::from_micros(now + 2_000_000);
    assert_eq!(f.store.find_web_session("s1", after).await.unwrap(), None);
    // A session is not a token, nor the other way round.
    assert_eq!(f.store.find_token("s1").await.unwrap(), None);

    f.store.delete_web_session("s1").await.unwrap();
    assert_eq!(f.store.find_web_session("s1", before).await.unwrap(), None);
}
