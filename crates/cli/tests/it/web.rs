//! The web UI's HTTP side without a browser: the embedded assets (types, ETags, 304s), the
//! templates list, and preview URLs (capability tokens, the sandbox CSP, ownership, the
//! built output preferred over the draft, nothing outside it served).

use draftsmith_core::api::TokenCreated;
use draftsmith_sandbox::SandboxId;
use draftsmith_testkit::client::{assert_error, expect};
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{new_app, start_run};

both_stores!(preview_urls_are_capabilities_confined_to_the_app);

const SCRIPT: &str = include_str!("../fixtures/ui/builder.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_embedded_with_types_and_etags() {
    let server = TestServer::start(StoreKind::Sqlite).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    assert!(page.text().await.unwrap().contains("/ui/assets/js/main.js"));
    let again = http
        .get(format!("{}/", server.base_url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    for (path, kind) in [
        ("/ui/assets/js/main.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/js/stream.js", "text/javascript; charset=utf-8"),
        ("/ui/assets/app.css", "text/css; charset=utf-8"),
        ("/ui/assets/favicon.svg", "image/svg+xml"),
    ] {
        let r = http
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], kind, "{path}");
        assert!(r.headers().contains_key("etag"), "{path}");
    }
    let missing = server
        .anonymous()
        .get::<Value>("/ui/assets/js/nope.js", 404)
        .await;
    assert_error(&missing, "NOT_FOUND");
    let templates: Value = server.admin().get("/admin/templates", 200).await;
    let ids: Vec<&str> = templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["vite-react", "static"]);
    assert_error(
        &server
            .anonymous()
            .get::<Value>("/admin/templates", 401)
            .await,
        "UNAUTHORIZED",
    );
}

async fn preview_urls_are_capabilities_confined_to_the_app(kind: StoreKind) {
    let server = TestServer::with_script(kind, SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let path = format!("/admin/apps/{}/preview", app.id);
    assert_error(
        &server
            .anonymous()
            .post::<_, Value>(&path, &json!({}), 401)
            .await,
        "UNAUTHORIZED",
    );
    let preview: Value = admin.post(&path, &json!({}), 200).await;
    assert_eq!(preview["source"], "draft");
    assert_eq!(preview["revision"], 1);
    let url = preview["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/preview/{}/dsp_", app.id)),
        "{url}"
    );

    // No cookie, no header: the URL itself is the credential; every answer is sandboxed.
    let http = reqwest::Client::new();
    let index = http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html");
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox allow-scripts")
    );
    assert_eq!(index.headers()["x-draft-revision"], "1");
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<title>My App</title>")
    );
    let css = http
        .get(format!("{}{url}styles.css", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css");

    let get = |p: String| {
        let http = http.clone();
        async move { http.get(p).send().await.unwrap() }
    };
    let wrong = get(format!(
        "{}/preview/{}/dsp_nope/index.html",
        server.base_url, app.id
    ))
    .await;
    let body: Value = expect(wrong, 401, "GET", "wrong token")
        .await
        .json()
        .await
        .unwrap();
    assert_error(&body, "UNAUTHORIZED");
    let escape = get(format!("{}{url}..%2F..%2Fetc%2Fpasswd", server.base_url)).await;
    assert!(
        escape.status() == 400 || escape.status() == 404,
        "{}",
        escape.status()
    );
    let absent = get(format!("{}{url}nope.js", server.base_url)).await;
    assert_eq!(absent.status(), 404);
    // The token is for this app only, and never works as a session cookie.
    let other = new_app(&admin, "static").await;
    let token = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let foreign = get(format!(
        "{}/preview/{}/{token}/index.html",
        server.base_url, other.id
    ))
    .await;
    assert_eq!(
        foreign.status(),
        200,
        "an admin's token sees the admin's apps"
    );
    let as_cookie = http
        .get(format!("{}/admin/apps", server.base_url))
        .header("cookie", format!("draftsmith_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_cookie.status(), 401);
    // Another builder cannot preview the admin's app.
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    assert_error(
        &bob.post::<_, Value>(&path, &json!({}), 404).await,
        "NOT_FOUND",
    );
    let bobs_url: Value = bob
        .request(Method::POST, "/admin/apps")
        .json(&json!({"name": "Bob", "template": "static"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_app = bobs_url["id"].as_str().unwrap().to_owned();
    let bob_preview: Value = bob
        .post(&format!("/admin/apps/{bob_app}/preview"), &json!({}), 200)
        .await;
    let bob_token = bob_preview["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let trespass = get(format!(
        "{}/preview/{}/{bob_token}/index.html",
        server.base_url, app.id
    ))
    .await;
    assert_eq!(trespass.status(), 404);

    // Once the chat's workspace has a build, the preview serves it instead of the draft.
    let run = start_run(&admin, &app, json!({"input": "ZQUICK build"})).await;
    collect(&admin, &run.stream_url, None).await;
    let sandbox = SandboxId::for_chat(run.chat_session_id);
    let workspace = server
        .state
        .runner
        .controller()
        .workspace_dir(&sandbox)
        .unwrap();
    std::fs::create_dir_all(workspace.join("dist/assets")).unwrap();
    std::fs::write(workspace.join("dist/index.html"), "<h1>built</h1>").unwrap();
    std::fs::write(workspace.join("dist/assets/app.js"), "console.log(1)").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", workspace.join("dist/leak.txt")).unwrap();
    let built: Value = admin.post(&path, &json!({}), 200).await;
    assert_eq!(built["source"], "build");
    assert_eq!(built["built_revision"], 1);
    let url = built["url"].as_str().unwrap();
    let page = get(format!("{}{url}", server.base_url)).await;
    assert!(!page.headers().contains_key("x-draft-revision"));
    assert_eq!(page.text().await.unwrap(), "<h1>built</h1>");
    let js = get(format!("{}{url}assets/app.js", server.base_url)).await;
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-type"], "text/javascript");
    let leak = get(format!("{}{url}leak.txt", server.base_url)).await;
    assert_eq!(leak.status(), 404, "a symlink out of dist/ is not followed");
}
