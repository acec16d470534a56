//! Apps are created from each built-in template, listed and read back.

use draftsmith_core::api::{App, AppList, Draft};
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::json;

use crate::both_stores;

both_stores!(creates_an_app_from_each_template, slugs_stay_unique);

async fn creates_an_app_from_each_template(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    for template in draftsmith_templates::all() {
        let app: App = admin
            .post(
                "/admin/apps",
                &json!({"name": "Shop Front", "template": template.id}),
                201,
            )
            .await;
        assert_eq!(app.template, template.id);
        assert_eq!(app.draft_revision, 1);
        assert_eq!(app.owner_user_id.0, "admin");

        let draft: Draft = admin
            .get(&format!("/admin/apps/{}/draft", app.id), 200)
            .await;
        assert_eq!(draft.revision, 1);
        // The template's files and OpenCode's project-local tools, sorted by path.
        let mut expected: Vec<(String, Vec<u8>)> = template
            .files()
            .into_iter()
            .map(|(p, c)| (p, c.to_vec()))
            .chain(
                draftsmith_opencode::project_files()
                    .into_iter()
                    .map(|(p, t)| (p, t.into_bytes())),
            )
            .collect();
        expected.sort();
        let listed: Vec<&str> = draft.files.iter().map(|f| f.path.as_str()).collect();
        let wanted: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(listed, wanted);
        for tool in draftsmith_opencode::PROJECT_CUSTOM_TOOLS {
            assert!(
                wanted.contains(&format!(".opencode/tools/{tool}.ts").as_str()),
                "{wanted:?}"
            );
        }
        for (path, content) in &expected {
            let (bytes, revision) = admin
                .get_bytes(&format!("/admin/apps/{}/draft/files/{path}", app.id))
                .await;
            assert_eq!(&bytes, content, "{path}");
            assert_eq!(revision, 1);
        }
        let fetched: App = admin.get(&format!("/admin/apps/{}", app.id), 200).await;
        assert_eq!(fetched, app);
    }
    let list: AppList = admin.get("/admin/apps", 200).await;
    assert_eq!(list.apps.len(), draftsmith_templates::all().len());
    assert!(
        list.apps[0].created_at >= list.apps[1].created_at,
        "newest first"
    );
}

async fn slugs_stay_unique(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let mut slugs = Vec::new();
    for _ in 0..3 {
        let app: App = admin
            .post(
                "/admin/apps",
                &json!({"name": "Todo  List!", "template": "static"}),
                201,
            )
            .await;
        slugs.push(app.slug);
    }
    assert_eq!(slugs, ["todo-list", "todo-list-2", "todo-list-3"]);
}
