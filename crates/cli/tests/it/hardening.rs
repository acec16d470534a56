//! Issue 13's input and credential defects: strict bodies and media types (5), previews
//! bound to the sign-in that minted them and serving only page assets (4), and the
//! session cookie's `Secure` attribute behind an HTTPS proxy (9).

use draftsmith_core::api::App;
use draftsmith_service::Config;
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::{ADMIN_TOKEN, StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;

both_stores!(
    bodies_and_media_types_are_strict,
    previews_end_with_their_sign_in
);

async fn new_app(server: &TestServer) -> App {
    server
        .admin()
        .post(
            "/admin/apps",
            &json!({"name": "h", "template": "static"}),
            201,
        )
        .await
}

async fn bodies_and_media_types_are_strict(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&server).await;
    let checkpoints = format!("/admin/apps/{}/coding-agent/checkpoints", app.id);
    for body in ["[]", "null", "\"x\"", "[\"label\"]"] {
        let answer = admin.post_raw(&checkpoints, body, 400).await;
        assert_error(&answer, "VALIDATION_FAILED");
    }
    let tool = |name: &str, output: Value| {
        json!({"name": name, "description": "d", "input_schema": {"type": "object"},
               "output_schema": output})
    };
    for (body, field) in [
        (tool("ok", json!(false)), "output_schema"),
        (tool("ok", json!(true)), "output_schema"),
        (tool("bad\u{7}name", json!({"type": "object"})), "name"),
        (tool("tab\tname", json!({"type": "object"})), "name"),
    ] {
        let answer: Value = admin.post("/admin/tools", &body, 400).await;
        assert_eq!(
            assert_error(&answer, "VALIDATION_FAILED")["field"],
            field,
            "{body}"
        );
    }
    let tools: Value = admin.get("/admin/tools", 200).await;
    assert_eq!(tools["tools"], json!([]), "no bad tool was stored");

    let send = |content_type: Option<&'static str>, name: &'static str| {
        let mut request = admin
            .request(Method::POST, "/admin/apps")
            .body(json!({"name": name, "template": "static"}).to_string());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        async move { request.send().await.unwrap() }
    };
    for ct in [
        "Application/JSON; charset=utf-8",
        "application/json",
        "APPLICATION/JSON;charset=UTF-8",
    ] {
        assert_eq!(send(Some(ct), "accepted").await.status(), 201, "{ct}");
    }
    for ct in [
        Some("application/jsonx"),
        Some("application/vnd.api+json"),
        Some("application/json, text/plain"),
        Some("text/plain"),
        None,
    ] {
        let refused = send(ct, "refused").await;
        assert_eq!(refused.status(), 415, "{ct:?}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            assert_error(&body, "VALIDATION_FAILED")["field"],
            "content-type"
        );
    }
    let apps: Value = admin.get("/admin/apps", 200).await;
    let names: Vec<&str> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"refused"), "{names:?}");
}

/// Signs in with the admin token; the session cookie's value.
async fn sign_in(server: &TestServer, headers: &[(&str, &str)]) -> (String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/auth/session", server.base_url))
        .json(&json!({"token": ADMIN_TOKEN}));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    (value, cookie)
}

async fn previews_end_with_their_sign_in(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let app = new_app(&server).await;
    let admin = server.admin();
    for (path, content) in [
        ("secret.ts", "export const key = 1"),
        ("README.md", "# notes"),
        ("package.json", "{}"),
        ("data/items.json", "[1]"),
    ] {
        admin
            .put_bytes(
                &format!("/admin/apps/{}/draft/files/{path}", app.id),
                content,
                Some("*"),
                200,
            )
            .await;
    }
    let (session, _) = sign_in(&server, &[]).await;
    let http = reqwest::Client::new();
    let cookie = format!("draftsmith_session={session}");
    let minted: Value = http
        .post(format!("{}/admin/apps/{}/preview", server.base_url, app.id))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{}{}", server.base_url, minted["url"].as_str().unwrap());
    let get = |path: &str, origin: Option<&str>| {
        let mut request = http.get(format!("{url}{path}"));
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        async move { request.send().await.unwrap() }
    };
    let page = get("", Some("null")).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["access-control-allow-origin"], "null");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let elsewhere = get("index.html", Some("https://evil.example")).await;
    assert_eq!(elsewhere.status(), 200);
    assert!(
        !elsewhere
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(get("styles.css", None).await.status(), 200);
    assert_eq!(get("data/items.json", None).await.status(), 200);
    for hidden in [
        ".opencode/tools/README.md",
        ".opencode/package.json",
        "secret.ts",
        "README.md",
        "package.json",
    ] {
        let answer = get(hidden, None).await;
        assert_eq!(answer.status(), 404, "{hidden}");
        assert_error(&answer.json::<Value>().await.unwrap(), "NOT_FOUND");
    }
    // Signing out ends the preview minted through that session at once.
    let out = http
        .delete(format!("{}/auth/session", server.base_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = get("", None).await;
    assert_eq!(after.status(), 401);
    assert_error(&after.json::<Value>().await.unwrap(), "UNAUTHORIZED");
    // A preview minted with a bearer token lives as long as the token.
    let by_token: Value = admin
        .post(&format!("/admin/apps/{}/preview", app.id), &json!({}), 200)
        .await;
    let url = format!("{}{}", server.base_url, by_token["url"].as_str().unwrap());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_behind_an_https_proxy() {
    let server = TestServer::start(StoreKind::Sqlite).await;
    let (_, plain) = sign_in(&server, &[("x-forwarded-proto", "https")]).await;
    assert!(
        !plain.contains("Secure"),
        "proxy headers are not trusted by default: {plain}"
    );
    let mut config = Config::default();
    config.http.trust_proxy_headers = true;
    let proxied = TestServer::start_with(StoreKind::Sqlite, config).await;
    let (_, http) = sign_in(&proxied, &[]).await;
    assert!(!http.contains("Secure"), "{http}");
    for header in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=1.2.3.4;proto=https"),
    ] {
        let (_, https) = sign_in(&proxied, &[header]).await;
        assert!(https.contains("; Secure"), "{header:?}: {https}");
        assert!(https.contains("HttpOnly") && https.contains("SameSite=Strict"));
    }
    let mut config = Config::default();
    config.http.secure_cookies = true;
    let always = TestServer::start_with(StoreKind::Sqlite, config).await;
    let (_, cookie) = sign_in(&always, &[]).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
}
