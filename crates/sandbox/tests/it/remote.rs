//! What only the remote deployment has: shared-secret auth, the error envelope, and a
//! command killed when its HTTP request is dropped.

use std::time::Duration;

use draftsmith_core::ErrorBody;
use draftsmith_sandbox::{RemoteController, SandboxController, SandboxError};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::{Deployment, Env, SECRET, eventually, marker, pids_with, unique_id};

const HOUR: Duration = Duration::from_secs(3600);

fn create_url(env: &Env, id: &str) -> String {
    let base = env.base_url.clone().unwrap();
    format!("{base}/internal/sandbox-controller/sessions/{id}/create")
}

#[tokio::test]
async fn wrong_or_missing_secret_is_401_in_the_envelope() {
    let env = Env::new(Deployment::Remote).await;
    let http = reqwest::Client::new();
    let url = create_url(&env, "chat-x");
    let body = json!({"template": "static", "ttl_ms": 1000});
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic dGVzdA=="),
        Some(SECRET),
    ] {
        let mut request = http.post(&url).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let envelope: ErrorBody = response.json().await.unwrap();
        assert_eq!(envelope.error.code.as_str(), "UNAUTHORIZED");
    }
    let unknown = format!(
        "{}/internal/sandbox-controller/nope",
        env.base_url.clone().unwrap()
    );
    assert_eq!(http.post(unknown).send().await.unwrap().status(), 401);

    let wrong = RemoteController::new(env.base_url.clone().unwrap(), "nope", http);
    let err = wrong
        .create(&unique_id("x"), "static", HOUR)
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Unauthorized(_)), "{err:?}");
    assert!(wrong.probe().await.is_err());
}

#[tokio::test]
async fn bad_requests_answer_the_envelope() {
    let env = Env::new(Deployment::Remote).await;
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {SECRET}");
    let cases = [
        (
            create_url(&env, "bad.id"),
            json!({"template": "s", "ttl_ms": 1}),
            400,
            "VALIDATION_FAILED",
        ),
        (
            create_url(&env, "chat-1"),
            json!({"template": 5}),
            400,
            "VALIDATION_FAILED",
        ),
        (
            create_url(&env, "chat-1").replace("/create", "/snapshot"),
            json!({"base": []}),
            404,
            "NOT_FOUND",
        ),
    ];
    for (url, body, status, code) in cases {
        let response = http
            .post(&url)
            .header("authorization", &bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{url}");
        let envelope: ErrorBody = response.json().await.unwrap();
        assert_eq!(envelope.error.code.as_str(), code, "{url}");
    }
}

#[tokio::test]
async fn a_dropped_request_kills_its_command() {
    let env = Env::new(Deployment::Remote).await;
    let id = env.sandbox("drop", HOUR).await;
    let m = marker();
    let url = create_url(&env, id.as_str()).replace("/create", "/exec");
    let body = json!({
        "exec_id": "drop-test",
        "request": {"command": format!("sleep {m} & sleep {m}"), "timeout": 3_600_000, "max_output_bytes": 1024}
    });
    let request = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {SECRET}"))
        .json(&body)
        .send();
    let pending = tokio::spawn(request);
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&m).len() >= 2).await,
        "the command never started"
    );
    pending.abort();
    let _ = pending.await;
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&m).is_empty()).await,
        "{:?} survived the dropped request",
        pids_with(&m)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env.local.running_commands(&id).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the command is still registered"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
