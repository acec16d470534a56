//! The HTTP calls the run benchmarks make: create an app, start a run, follow its events
//! to the terminal one. Errors come back as values, never panics.

use anyhow::{Context, bail};
use draftsmith_core::RunStatus;
use draftsmith_core::api::{App, Run};
use draftsmith_testkit::ApiClient;
use draftsmith_testkit::sse::EventReader;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A new app from the `static` template.
pub async fn new_app(client: &ApiClient, name: &str) -> anyhow::Result<App> {
    let body = json!({"name": name, "template": "static"});
    post(client, "/admin/apps", &body).await
}

/// Starts a run of `app` with `input`.
pub async fn start_run(client: &ApiClient, app: &App, input: &str) -> anyhow::Result<Run> {
    start_run_with(client, app, &json!({"input": input})).await
}

/// Starts a run of `app` with a whole request body (engine, chat session, …).
pub async fn start_run_with(client: &ApiClient, app: &App, body: &Value) -> anyhow::Result<Run> {
    let path = format!("/admin/apps/{}/coding-agent/runs", app.id);
    post(client, &path, body).await
}

/// Follows `run`'s event stream from its start and returns the status its terminal event
/// moves it to.
pub async fn follow(client: &ApiClient, run: &Run) -> anyhow::Result<RunStatus> {
    let mut reader = EventReader::open(client, &run.stream_url, None).await;
    while let Some(event) = reader.next().await {
        if let Some(status) = event.body.terminal_status() {
            return Ok(status);
        }
    }
    bail!(
        "the stream of run {} ended without a terminal event",
        run.run_id
    )
}

/// Starts a run and follows it; fails unless it completes.
pub async fn complete_run(client: &ApiClient, app: &App, input: &str) -> anyhow::Result<()> {
    let run = start_run(client, app, input).await?;
    match follow(client, &run).await? {
        RunStatus::Completed => Ok(()),
        other => bail!("run {} ended {other:?}, not completed", run.run_id),
    }
}

async fn post<T: DeserializeOwned>(
    client: &ApiClient,
    path: &str,
    body: &Value,
) -> anyhow::Result<T> {
    let response = client
        .request(Method::POST, path)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    if status != StatusCode::CREATED {
        let text = response.text().await.unwrap_or_default();
        bail!("POST {path}: expected 201, got {status}: {text}");
    }
    response
        .json()
        .await
        .with_context(|| format!("POST {path}: undecodable answer"))
}
