//! Every auth failure: missing, malformed and unknown credentials, the wrong role, another
//! user's app, and the browser session cookie.

use draftsmith_core::api::{App, AppList, Me, TokenCreated};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::{StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;

both_stores!(
    credentials_are_required,
    roles_and_ownership_are_enforced,
    session_cookie_signs_in
);

async fn credentials_are_required(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let anonymous = server.anonymous();
    for path in ["/admin/apps", "/admin/me", "/admin/storage"] {
        assert_error(&anonymous.get::<Value>(path, 401).await, "UNAUTHORIZED");
        let wrong = anonymous.with_token("ds_not_a_token");
        assert_error(&wrong.get::<Value>(path, 401).await, "UNAUTHORIZED");
        let basic = anonymous
            .request(Method::GET, path)
            .header("authorization", "Basic YWRtaW46YWRtaW4=")
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 401);
        assert_error(&basic.json::<Value>().await.unwrap(), "UNAUTHORIZED");
    }
    let create = anonymous
        .post::<_, Value>(
            "/admin/apps",
            &json!({"name": "x", "template": "static"}),
            401,
        )
        .await;
    assert_error(&create, "UNAUTHORIZED");
    // Health and the API description are public.
    let health: Value = anonymous.get("/healthz", 200).await;
    assert_eq!(health["status"], "ok");
    let api: Value = anonymous.get("/openapi.json", 200).await;
    assert!(api["paths"]["/admin/apps/{app_id}/draft/files/{path}"]["put"].is_object());
}

async fn roles_and_ownership_are_enforced(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let alice: TokenCreated = admin
        .post("/admin/tokens", &json!({"user": "alice"}), 201)
        .await;
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let alice = admin.with_token(&alice.token);
    let bob = admin.with_token(&bob.token);

    let me: Me = alice.get("/admin/me", 200).await;
    assert_eq!(me.user_id.0, "alice");
    // Builders may not mint tokens or read operator statistics.
    let forbidden = alice
        .post::<_, Value>(
            "/admin/tokens",
            &json!({"user": "mallory", "role": "admin"}),
            403,
        )
        .await;
    assert_error(&forbidden, "FORBIDDEN");
    assert_error(
        &alice.get::<Value>("/admin/storage", 403).await,
        "FORBIDDEN",
    );

    let app: App = alice
        .post(
            "/admin/apps",
            &json!({"name": "Alice's", "template": "static"}),
            201,
        )
        .await;
    let base = format!("/admin/apps/{}", app.id);
    // Bob cannot see, read or write Alice's app, and learns nothing about it.
    for path in [
        base.clone(),
        format!("{base}/draft"),
        format!("{base}/draft/files/index.html"),
    ] {
        assert_error(&bob.get::<Value>(&path, 404).await, "NOT_FOUND");
    }
    let write = bob
        .put_bytes(&format!("{base}/draft/files/x.txt"), "x", Some("*"), 404)
        .await;
    assert_error(&write, "NOT_FOUND");
    let bob_list: AppList = bob.get("/admin/apps", 200).await;
    assert!(bob_list.apps.is_empty());
    let alice_list: AppList = alice.get("/admin/apps", 200).await;
    assert_eq!(alice_list.apps.len(), 1);
    // The admin sees everything.
    let admin_view: App = admin.get(&base, 200).await;
    assert_eq!(admin_view.owner_user_id.0, "alice");
}

async fn session_cookie_signs_in(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.base_url);
    let bad = http
        .post(url("/auth/session"))
        .json(&json!({"token": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let signed = http
        .post(url("/auth/session"))
        .json(&json!({"token": draftsmith_testkit::ADMIN_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();

    let me = http
        .get(url("/admin/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Me>().await.unwrap().user_id.0, "admin");

    let out = http
        .delete(url("/auth/session"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = http
        .get(url("/admin/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    let forged = http
        .get(url("/admin/me"))
        .header("cookie", "draftsmith_session=dss_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}
