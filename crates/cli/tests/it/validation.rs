//! Every class of bad input gets the error envelope with a stable code and a 4xx, never a
//! 500 or an HTML page, and changes nothing.

use draftsmith_core::api::{App, Draft};
use draftsmith_service::Config;
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::{StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;

both_stores!(
    bad_json_bodies_name_the_field,
    bad_paths_are_blocked,
    oversized_and_unknown_requests
);

async fn bad_json_bodies_name_the_field(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let cases: &[(&str, Option<&str>)] = &[
        ("{", None),
        ("", None),
        ("[1, 2]", None),
        ("{\"name\": \"x\", \"template\": \"static\"} trailing", None),
        ("{\"template\": \"static\"}", Some("name")),
        ("{\"name\": \"x\"}", Some("template")),
        ("{\"name\": 5, \"template\": \"static\"}", Some("name")),
        (
            "{\"name\": \"x\", \"template\": \"static\", \"colour\": \"red\"}",
            Some("colour"),
        ),
        (
            "{\"name\": \"   \", \"template\": \"static\"}",
            Some("name"),
        ),
        (
            "{\"name\": \"x\", \"template\": \"angular\"}",
            Some("template"),
        ),
    ];
    for (body, field) in cases {
        let answer = admin.post_raw("/admin/apps", body.to_string(), 400).await;
        let details = assert_error(&answer, "VALIDATION_FAILED");
        if let Some(field) = field {
            assert_eq!(details["field"], *field, "{body}: {answer}");
        }
    }
    let form = admin
        .request(Method::POST, "/admin/apps")
        .header("content-type", "text/plain")
        .body("{\"name\": \"x\", \"template\": \"static\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert_error(&form.json::<Value>().await.unwrap(), "VALIDATION_FAILED");
    let tokens = admin
        .post::<_, Value>("/admin/tokens", &json!({"user": "no spaces"}), 400)
        .await;
    assert_eq!(assert_error(&tokens, "VALIDATION_FAILED")["field"], "user");
    let role = admin
        .post::<_, Value>("/admin/tokens", &json!({"user": "a", "role": "root"}), 400)
        .await;
    assert_eq!(assert_error(&role, "VALIDATION_FAILED")["field"], "role");
    // Nothing was created by any of them.
    let apps: Value = admin.get("/admin/apps", 200).await;
    assert_eq!(apps["apps"], json!([]));
}

async fn bad_paths_are_blocked(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app: App = admin
        .post(
            "/admin/apps",
            &json!({"name": "p", "template": "static"}),
            201,
        )
        .await;
    let hostile = [
        "..%2F..%2Fetc%2Fpasswd",
        "a/..%2F..%2Fb",
        "%2Fetc%2Fpasswd",
        ".git/config",
        "src/.git/HEAD",
        "node_modules/react/index.js",
        "dist/index.html",
        ".cache/x",
        "a%00b",
        "a%0Ab",
        "a%5C..%5Cb",
        "C:%2Fwindows",
        "tsconfig.tsbuildinfo",
        // Case, trailing dots and spaces do not get around the blocked directories…
        ".GIT/hooks/pre-commit",
        ".Git/config",
        "Node_Modules/x.js",
        ".git%20/config",
        ".git./config",
        ".GIT%2E%20/config",
        // …and names with bidi controls, zero-width characters or a BOM are refused.
        "src/%E2%80%AEsj.txt",
        "%E2%80%AAa.js",
        "%E2%81%A6a.js",
        "a%E2%80%8B.js",
        "a%E2%80%8Fb.js",
        "a%E2%81%A0b.js",
        "%EF%BB%BFindex.html",
    ];
    for raw in hostile {
        let path = format!("/admin/apps/{}/draft/files/{raw}", app.id);
        let put = admin.put_bytes(&path, "x", Some("*"), 400).await;
        let details = assert_error(&put, "CODING_AGENT_PATH_BLOCKED");
        assert!(details["reason"].is_string(), "{raw}: {put}");
        assert_error(
            &admin.get::<Value>(&path, 400).await,
            "CODING_AGENT_PATH_BLOCKED",
        );
    }
    for (raw, reason) in [
        (".GIT/hooks/pre-commit", "blocked_directory"),
        (".git%20/config", "blocked_directory"),
        (".git./config", "blocked_directory"),
        ("src/%E2%80%AEsj.txt", "invisible_character"),
        ("%EF%BB%BFindex.html", "invisible_character"),
    ] {
        let path = format!("/admin/apps/{}/draft/files/{raw}", app.id);
        let put = admin.put_bytes(&path, "x", Some("*"), 400).await;
        let details = assert_error(&put, "CODING_AGENT_PATH_BLOCKED");
        assert_eq!(details["reason"], reason, "{raw}");
    }
    let long = format!("/admin/apps/{}/draft/files/{}", app.id, "a".repeat(1100));
    assert_error(
        &admin.put_bytes(&long, "x", Some("*"), 400).await,
        "CODING_AGENT_PATH_BLOCKED",
    );
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(draft.revision, 1, "no write went through");
}

async fn oversized_and_unknown_requests(kind: StoreKind) {
    let config = Config {
        max_file_bytes: 4096,
        max_json_bytes: 2048,
        ..Config::default()
    };
    let server = TestServer::start_with(kind, config).await;
    let admin = server.admin();
    let app: App = admin
        .post(
            "/admin/apps",
            &json!({"name": "big", "template": "static"}),
            201,
        )
        .await;
    let file = format!("/admin/apps/{}/draft/files/big.bin", app.id);
    let too_big = admin
        .put_bytes(&file, vec![7u8; 4097], Some("1"), 413)
        .await;
    assert_error(&too_big, "PAYLOAD_TOO_LARGE");
    admin
        .put_bytes(&file, vec![7u8; 4096], Some("1"), 200)
        .await;
    let huge_json = format!(
        "{{\"name\": \"{}\", \"template\": \"static\"}}",
        "n".repeat(4000)
    );
    assert_error(
        &admin.post_raw("/admin/apps", huge_json, 413).await,
        "PAYLOAD_TOO_LARGE",
    );

    for (method, path, status, code) in [
        (Method::GET, "/nope".to_owned(), 404, "NOT_FOUND"),
        (
            Method::GET,
            "/admin/apps/not-a-uuid".to_owned(),
            404,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/admin/apps/{}", uuid::Uuid::new_v4()),
            404,
            "NOT_FOUND",
        ),
        (
            Method::DELETE,
            "/admin/apps".to_owned(),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            Method::PATCH,
            format!("/admin/apps/{}/draft", app.id),
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ] {
        let response = admin.request(method.clone(), &path).send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        assert_error(&response.json::<Value>().await.unwrap(), code);
    }
}
