//! The real binary: a restart keeps everything, two processes share one PostgreSQL
//! database, SIGTERM shuts down cleanly, and the first start prints an admin token once.

use draftsmith_core::api::{App, Draft};
use draftsmith_testkit::{ApiClient, ServerProcess, StoreKind, TestDb};
use serde_json::json;

use crate::support::binary;

#[tokio::test]
async fn sqlite_restart_keeps_everything() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let first = ServerProcess::start(&binary(), &db).await;
    let admin = first.admin();
    let app: App = admin
        .post(
            "/admin/apps",
            &json!({"name": "Keep", "template": "static"}),
            201,
        )
        .await;
    let file = format!("/admin/apps/{}/draft/files/kept.txt", app.id);
    admin.put_bytes(&file, "still here", Some("1"), 200).await;
    let before: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    let status = first.terminate().await;
    assert!(status.success(), "graceful shutdown on SIGTERM: {status:?}");
    assert!(db.dir.path().join("draftsmith.db").exists());

    let second = ServerProcess::start(&binary(), &db).await;
    let admin = second.admin();
    let after: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(after.revision, before.revision);
    assert_eq!(after.files, before.files);
    assert_eq!(admin.get_bytes(&file).await, (b"still here".to_vec(), 2));
}

#[tokio::test]
async fn two_processes_share_one_postgres_database() {
    let db = TestDb::new(StoreKind::Postgres).await;
    let one = ServerProcess::start(&binary(), &db).await;
    let two = ServerProcess::start(&binary(), &db).await;
    let app: App = one
        .admin()
        .post(
            "/admin/apps",
            &json!({"name": "Shared", "template": "vite-react"}),
            201,
        )
        .await;
    let file = format!("/admin/apps/{}/draft/files/src/Hello.jsx", app.id);
    one.admin()
        .put_bytes(&file, "export const Hello = 1;\n", Some("1"), 200)
        .await;
    assert_eq!(
        two.admin().get_bytes(&file).await,
        (b"export const Hello = 1;\n".to_vec(), 2)
    );
    // The revision check holds across instances.
    two.admin().put_bytes(&file, "two", Some("2"), 200).await;
    let stale = one.admin().put_bytes(&file, "one", Some("2"), 409).await;
    assert_eq!(stale["error"]["code"], "CODING_AGENT_REVISION_CONFLICT");
}

#[tokio::test]
async fn first_start_prints_an_admin_token_once() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let first = ServerProcess::start_with_env(&binary(), &db, &[]).await;
    let token = first
        .banner
        .iter()
        .find_map(|line| line.split_whitespace().find(|w| w.starts_with("ds_")))
        .map(str::to_owned)
        .expect("the first start prints a token");
    let client = ApiClient::new(&first.base_url, Some(&token));
    let me: serde_json::Value = client.get("/admin/me", 200).await;
    assert_eq!(me["role"], "admin");
    first.terminate().await;

    let second = ServerProcess::start_with_env(&binary(), &db, &[]).await;
    assert!(
        second.banner.iter().all(|l| !l.contains("ds_")),
        "a token is printed only once: {:?}",
        second.banner
    );
    let me: serde_json::Value = ApiClient::new(&second.base_url, Some(&token))
        .get("/admin/me", 200)
        .await;
    assert_eq!(me["user_id"], "admin");
}

#[tokio::test]
async fn token_create_mints_a_working_token() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let output = tokio::process::Command::new(binary())
        .args(["token", "create", "--user", "carol", "--role", "builder"])
        .env("DRAFTSMITH_DATA_DIR", db.dir.path())
        .env("DATABASE_URL", "")
        .current_dir(db.dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("ds_"));
    let server = ServerProcess::start(&binary(), &db).await;
    let me: serde_json::Value = ApiClient::new(&server.base_url, Some(&token))
        .get("/admin/me", 200)
        .await;
    assert_eq!(me, json!({"user_id": "carol", "role": "builder"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_makes_a_visible_change_offline() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let server = ServerProcess::start_with_args(
        &binary(),
        &db,
        &["--demo"],
        &[
            ("DRAFTSMITH_ADMIN_TOKEN", draftsmith_testkit::ADMIN_TOKEN),
            ("APPS_CODING_AGENT_VERIFY", "0"),
        ],
    )
    .await;
    let admin = server.admin();
    for (template, file, wanted) in [
        ("vite-react", "src/App.jsx", "<Welcome />"),
        ("static", "index.html", "Welcome to your demo shop"),
    ] {
        let app: App = admin
            .post(
                "/admin/apps",
                &json!({"name": "Demo", "template": template}),
                201,
            )
            .await;
        let run: draftsmith_core::api::Run = admin
            .post(
                &format!("/admin/apps/{}/coding-agent/runs", app.id),
                &json!({"input": "Make it a shop"}),
                201,
            )
            .await;
        assert_eq!(run.resolved_model_id, "demo/coder");
        let events = draftsmith_testkit::sse::collect(&admin, &run.stream_url, None).await;
        assert_eq!(
            events.last().unwrap().body.event_type(),
            "run.completed",
            "{template}: {events:#?}"
        );
        let (page, revision) = admin
            .get_bytes(&format!("/admin/apps/{}/draft/files/{file}", app.id))
            .await;
        let page = String::from_utf8(page).unwrap();
        assert_eq!(revision, 2, "{template}");
        assert!(
            page.contains("My Demo Shop") && page.contains(wanted),
            "{template}: {page}"
        );
    }
}
