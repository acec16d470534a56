//! Draft files: create, replace, delete, revision conflicts, old revisions and blob dedup.

use draftsmith_core::api::{App, Draft, StorageStats};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;

both_stores!(
    file_crud_moves_the_revision,
    stale_revisions_conflict_and_change_nothing,
    unchanged_blobs_are_stored_once,
    earlier_revisions_stay_readable,
);

async fn new_app(admin: &ApiClient, template: &str) -> App {
    admin
        .post(
            "/admin/apps",
            &json!({"name": "Draft Test", "template": template}),
            201,
        )
        .await
}

async fn file_crud_moves_the_revision(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let file = |p: &str| format!("/admin/apps/{}/draft/files/{p}", app.id);

    let created = admin
        .put_bytes(&file("notes/todo.md"), "# todo\n", Some("1"), 200)
        .await;
    assert_eq!(created["revision"], 2);
    assert_eq!(created["file"]["size"], 7);
    assert_eq!(
        admin.get_bytes(&file("notes/todo.md")).await,
        (b"# todo\n".to_vec(), 2)
    );

    let replaced = admin
        .put_bytes(&file("notes/todo.md"), "# done\n", Some("\"2\""), 200)
        .await;
    assert_eq!(replaced["revision"], 3);
    assert_eq!(admin.get_bytes(&file("notes/todo.md")).await.0, b"# done\n");

    // Writing the same bytes again is not a change.
    let same = admin
        .put_bytes(&file("notes/todo.md"), "# done\n", Some("3"), 200)
        .await;
    assert_eq!(same["revision"], 3);

    let deleted = admin.delete(&file("notes/todo.md"), Some("3"), 200).await;
    assert_eq!(deleted["revision"], 4);
    assert_eq!(deleted["file"], Value::Null);
    let gone = admin.get::<Value>(&file("notes/todo.md"), 404).await;
    assert_error(&gone, "NOT_FOUND");
    let again = admin.delete(&file("notes/todo.md"), Some("4"), 404).await;
    assert_error(&again, "NOT_FOUND");

    // `*` opts out of the revision check; a binary file survives byte for byte.
    let bytes: Vec<u8> = (0..=255u8).collect();
    admin
        .put_bytes(&file("img/raw.bin"), bytes.clone(), Some("*"), 200)
        .await;
    assert_eq!(admin.get_bytes(&file("img/raw.bin")).await, (bytes, 5));

    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(draft.revision, 5);
    assert!(
        draft
            .files
            .iter()
            .any(|f| f.path == "img/raw.bin" && f.size == 256)
    );
    let app_now: App = admin.get(&format!("/admin/apps/{}", app.id), 200).await;
    assert_eq!(app_now.draft_revision, 5);
}

async fn stale_revisions_conflict_and_change_nothing(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let path = format!("/admin/apps/{}/draft/files/index.html", app.id);
    let (original, _) = admin.get_bytes(&path).await;
    admin.put_bytes(&path, "<h1>v2</h1>", Some("1"), 200).await;

    let conflict = admin
        .put_bytes(&path, "<h1>stale</h1>", Some("1"), 409)
        .await;
    let details = assert_error(&conflict, "CODING_AGENT_REVISION_CONFLICT");
    assert_eq!(details["current_revision"], 2);
    let conflict = admin.delete(&path, Some("1"), 409).await;
    assert_error(&conflict, "CODING_AGENT_REVISION_CONFLICT");
    assert_eq!(admin.get_bytes(&path).await, (b"<h1>v2</h1>".to_vec(), 2));

    let missing = admin.put_bytes(&path, "x", None, 428).await;
    assert_eq!(
        assert_error(&missing, "VALIDATION_FAILED")["field"],
        "If-Match"
    );
    let garbage = admin.put_bytes(&path, "x", Some("yesterday"), 400).await;
    assert_eq!(
        assert_error(&garbage, "VALIDATION_FAILED")["field"],
        "If-Match"
    );
    assert_eq!(admin.get_bytes(&path).await.1, 2);
    assert_ne!(original, b"<h1>v2</h1>");
}

async fn unchanged_blobs_are_stored_once(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let file = |p: &str| format!("/admin/apps/{}/draft/files/{p}", app.id);
    let before: StorageStats = admin.get("/admin/storage", 200).await;

    // A second app from the same template shares every blob.
    new_app(&admin, "vite-react").await;
    let after_copy: StorageStats = admin.get("/admin/storage", 200).await;
    assert_eq!(after_copy.blobs, before.blobs);
    assert_eq!(after_copy.apps, before.apps + 1);

    // A new revision stores only the changed file's content.
    admin
        .put_bytes(
            &file("src/App.jsx"),
            "export default () => null;\n",
            Some("1"),
            200,
        )
        .await;
    let after_edit: StorageStats = admin.get("/admin/storage", 200).await;
    assert_eq!(after_edit.blobs, before.blobs + 1);

    // Content already stored under another path costs nothing.
    let (css, _) = admin.get_bytes(&file("src/index.css")).await;
    admin
        .put_bytes(&file("src/copy.css"), css, Some("2"), 200)
        .await;
    let after_dup: StorageStats = admin.get("/admin/storage", 200).await;
    assert_eq!(after_dup.blobs, after_edit.blobs);
    assert_eq!(after_dup.blob_bytes, after_edit.blob_bytes);
}

async fn earlier_revisions_stay_readable(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let draft = |rev: Option<i64>| {
        let query = rev.map(|r| format!("?revision={r}")).unwrap_or_default();
        format!("/admin/apps/{}/draft{query}", app.id)
    };
    let v1: Draft = admin.get(&draft(None), 200).await;
    let file = |p: &str| format!("/admin/apps/{}/draft/files/{p}", app.id);
    admin.put_bytes(&file("a.txt"), "a", Some("1"), 200).await;
    admin
        .put_bytes(&file("index.html"), "<p>new</p>", Some("2"), 200)
        .await;
    admin.delete(&file("script.js"), Some("3"), 200).await;

    let old: Draft = admin.get(&draft(Some(1)), 200).await;
    assert_eq!(old.files, v1.files);
    let r2: Draft = admin.get(&draft(Some(2)), 200).await;
    assert_eq!(r2.files.len(), v1.files.len() + 1);
    let now: Draft = admin.get(&draft(None), 200).await;
    assert_eq!(now.revision, 4);
    assert!(!now.files.iter().any(|f| f.path == "script.js"));
    assert_error(&admin.get::<Value>(&draft(Some(9)), 404).await, "NOT_FOUND");
    assert_error(&admin.get::<Value>(&draft(Some(0)), 404).await, "NOT_FOUND");
    let bad = admin
        .get::<Value>(&format!("/admin/apps/{}/draft?revision=x", app.id), 400)
        .await;
    assert_error(&bad, "VALIDATION_FAILED");
}
