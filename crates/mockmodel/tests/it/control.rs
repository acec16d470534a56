//! The control surface: recorded requests, model listing, lifecycle, `serve`, script files.

use std::time::Duration;

use draftsmith_mockmodel::{MockModel, RecordedRequest, Script, serve};
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn requests_are_recorded() {
    let model = start(SHAPE_SCRIPT).await;
    let first = openai_request("sys", "one", 0, true);
    let second = anthropic_request("sys", "two", 1, false);
    post_stream(&openai_url(&model), &first).await;
    post_json(&anthropic_url(&model), &second).await;

    let recorded = model.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].body, first);
    assert_eq!(recorded[0].scenario, "shape");
    assert_eq!(recorded[0].turn, 0);
    assert_eq!(recorded[1].path, "/v1/messages");
    assert_eq!(recorded[1].body, second);
    assert_eq!(recorded[1].turn, 1);
    let arrivals = model.arrivals();
    assert_eq!(arrivals.len(), recorded.len(), "one arrival per request");
    assert!(arrivals[0] <= arrivals[1], "arrivals in order");

    let listed: Vec<RecordedRequest> = client()
        .get(format!("http://{}/_mock/requests", model.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, recorded);
    let raw: Value = client()
        .get(format!("http://{}/_mock/requests", model.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw[0]["scenario"], "shape");
    assert_eq!(raw[1]["path"], "/v1/messages");
}

#[tokio::test]
async fn models_are_listed() {
    let model = start(SHAPE_SCRIPT).await;
    let body: Value = client()
        .get(format!("{}/models", model.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "coder");
    assert_eq!(body["data"][0]["object"], "model");
    // Listing is not a model request.
    assert!(model.requests().is_empty());

    let response = client()
        .get(format!("{}/nothing", model.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn base_url_points_at_v1_on_loopback() {
    let model = start(SHAPE_SCRIPT).await;
    let url = model.base_url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/v1"), "{url}");
}

#[tokio::test]
async fn dropping_the_model_stops_the_server() {
    let model = start(SHAPE_SCRIPT).await;
    let url = format!("{}/models", model.base_url());
    assert!(client().get(&url).send().await.is_ok());
    drop(model);
    let mut stopped = false;
    for _ in 0..100 {
        // A fresh client: no pooled keep-alive connection.
        if reqwest::Client::new().get(&url).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "the server still answers after drop");
}

#[tokio::test]
async fn shutdown_cuts_open_streams() {
    let model = start(
        r#"{"scenarios":[{"name":"slow","turns":[{"steps":[
            {"text":"start"},{"delay_ms":60000},{"text":"never"}]}]}]}"#,
    )
    .await;
    let url = openai_url(&model);
    let reader =
        tokio::spawn(async move { post_stream(&url, &openai_request("s", "u", 0, true)).await });
    // Wait until the request is in flight.
    for _ in 0..200 {
        if !model.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::timeout(Duration::from_secs(10), model.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    let streamed = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(!streamed.clean_end);
    assert!(!streamed.raw.contains("never"));
}

#[tokio::test]
async fn serve_runs_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Script::from_json(SHAPE_SCRIPT).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, script, async move {
        let _ = rx.await;
    }));
    let streamed = post_stream(
        &format!("http://{addr}/v1/chat/completions"),
        &openai_request("s", "u", 1, true),
    )
    .await;
    assert_eq!(openai_text(&streamed.chunks()), "All done.");
    let recorded: Vec<Value> = client()
        .get(format!("http://{addr}/_mock/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn script_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.json");
    std::fs::write(&path, SHAPE_SCRIPT).unwrap();
    let script = Script::from_file(&path).unwrap();
    assert_eq!(script.scenarios[0].name, "shape");
    let model = MockModel::start(script).await.unwrap();
    let (status, _, body) =
        post_json(&openai_url(&model), &openai_request("s", "u", 0, false)).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

    std::fs::write(
        &path,
        r#"{"scenarios": [{"name": "x", "turns": [{"steps": [{"txt": "typo"}]}]}]}"#,
    )
    .unwrap();
    let err = Script::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("scenarios[0].turns[0].steps[0]"), "{err}");
}

/// Every JSON example in `docs/mock-model.md` is a valid script (or a valid turn).
#[tokio::test]
async fn documented_examples_parse() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/mock-model.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let blocks: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .collect();
    let mut checked = 0;
    for block in blocks {
        let Ok(value) = serde_json::from_str::<Value>(block) else {
            continue; // a fragment with placeholders
        };
        let script = if value.get("scenarios").is_some() {
            value
        } else {
            // A turn or an attempt on its own.
            serde_json::json!({"scenarios": [{"name": "doc", "turns": [value]}]})
        };
        Script::from_json(&script.to_string()).unwrap_or_else(|e| panic!("{e}\n{block}"));
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} examples checked");
}
