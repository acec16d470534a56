//! Agents and tools: unique names per owner and kind, replace, list, delete, selection.

use draftsmith_core::UserId;
use draftsmith_store::prelude::*;
use draftsmith_store::{StoreError, StoredResource};
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice};

draftsmith_testkit::both_stores!(
    resources_are_created_replaced_listed_and_deleted,
    an_app_selects_and_clears_its_agent,
);

fn agent(id: &str, owner: &str, name: &str) -> StoredResource {
    StoredResource {
        id: id.into(),
        kind: "agent".into(),
        owner: UserId(owner.into()),
        name: name.into(),
        body: serde_json::json!({ "name": name, "instructions": "be brief" }),
    }
}

async fn resources_are_created_replaced_listed_and_deleted(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    f.store
        .put_resource(&agent("a1", "alice", "writer"), true)
        .await
        .unwrap();
    f.store
        .put_resource(&agent("a2", "alice", "editor"), true)
        .await
        .unwrap();
    f.store
        .put_resource(&agent("b1", "bob", "writer"), true)
        .await
        .unwrap();

    let taken = f
        .store
        .put_resource(&agent("a3", "alice", "writer"), true)
        .await;
    assert!(
        matches!(taken, Err(StoreError::NameTaken(ref n)) if n == "writer"),
        "{taken:?}"
    );

    let mut renamed = agent("a1", "alice", "author");
    renamed.body = serde_json::json!({ "name": "author" });
    f.store.put_resource(&renamed, false).await.unwrap();
    assert_eq!(f.store.resource("agent", "a1").await.unwrap(), renamed);
    let clash = f
        .store
        .put_resource(&agent("a1", "alice", "editor"), false)
        .await;
    assert!(matches!(clash, Err(StoreError::NameTaken(_))), "{clash:?}");
    let absent = f
        .store
        .put_resource(&agent("zz", "alice", "x"), false)
        .await;
    assert!(
        matches!(absent, Err(StoreError::NotFound("resource"))),
        "{absent:?}"
    );

    let names = |list: Vec<StoredResource>| list.into_iter().map(|r| r.name).collect::<Vec<_>>();
    let mine = f.store.resources("agent", Some(&alice())).await.unwrap();
    assert_eq!(names(mine), ["author", "editor"]);
    assert_eq!(
        names(f.store.resources("agent", None).await.unwrap()),
        ["author", "editor", "writer"]
    );
    assert!(f.store.resources("tool", None).await.unwrap().is_empty());

    // The kind is part of the address.
    let as_tool = f.store.resource("tool", "a1").await;
    assert!(
        matches!(as_tool, Err(StoreError::NotFound("tool"))),
        "{as_tool:?}"
    );
    f.store.delete_resource("agent", "a2").await.unwrap();
    let gone = f.store.resource("agent", "a2").await;
    assert!(
        matches!(gone, Err(StoreError::NotFound("agent"))),
        "{gone:?}"
    );
    let again = f.store.delete_resource("agent", "a2").await;
    assert!(
        matches!(again, Err(StoreError::NotFound("agent"))),
        "{again:?}"
    );
}

async fn an_app_selects_and_clears_its_agent(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    f.store.select_agent(app, Some("a1")).await.unwrap();
    assert_eq!(
        f.store.app(app).await.unwrap().selected_agent_id.as_deref(),
        Some("a1")
    );
    f.store.select_agent(app, None).await.unwrap();
    assert_eq!(f.store.app(app).await.unwrap().selected_agent_id, None);
    let missing = f
        .store
        .select_agent(draftsmith_core::AppId::new(), None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound("app"))),
        "{missing:?}"
    );
}
