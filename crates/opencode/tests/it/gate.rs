//! The model gate: a provider key reaches the model but never OpenCode's environment, and a
//! route stops working once closed.

use draftsmith_core::EventBody;
use draftsmith_engine::{Engine, Outcome, ProviderKind};
use draftsmith_opencode::{GateEndpoint, ModelGate, OpencodeEngine, PLACEHOLDER_KEY, descendants};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// What `support::job` configures as the provider's key.
const KEY: &str = "test-key";

#[tokio::test]
async fn the_provider_key_reaches_the_model_but_never_opencode() {
    let model = model(json!({"scenarios": [{"name": "env", "turns": [
        {"steps": [{"tool_call": {"id": "call_env", "name": "bash", "arguments": {
            "command": "env", "description": "Print the environment"}}}]},
        {"steps": [{"text": "looked"}]}
    ]}]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "show env"),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "looked".into()
        }
    );
    let calls: Vec<_> = model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == "env")
        .collect();
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(
        calls.iter().all(|r| r.credential.as_deref() == Some(KEY)),
        "the gate added the key: {:?}",
        calls.iter().map(|r| &r.credential).collect::<Vec<_>>()
    );
    let output = sink
        .events()
        .into_iter()
        .find_map(|e| match e {
            EventBody::ToolCompleted { tool, output, .. } if tool == "bash" => {
                Some(output.to_string())
            }
            _ => None,
        })
        .expect("env ran");
    assert!(output.contains(PLACEHOLDER_KEY), "{output}");
    assert!(!output.contains(KEY), "the agent saw the key: {output}");
    let pid = engine.server_pid(&ws).await.unwrap();
    let mut tree = descendants(pid);
    tree.push(pid);
    for process in &tree {
        let environ = std::fs::read(format!("/proc/{process}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        assert!(!environ.contains(KEY), "pid {process} holds the key");
    }
    shut_down(&engine, &tree).await;
}

#[tokio::test]
async fn a_closed_route_is_refused() {
    let model = model(json!({"scenarios": [{"name": "hi", "turns": [
        {"steps": [{"text": "hello"}]}
    ]}]}))
    .await;
    let gate = ModelGate::start().await.unwrap();
    let route = gate.open(&model.base_url(), "sk-secret", ProviderKind::OpenAi);
    let http = reqwest::Client::new();
    let ask = || {
        http.post(format!("{}/chat/completions", route.base_url))
            .bearer_auth("whatever-the-caller-says")
            .json(&json!({"model": "coder", "stream": false,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let answer = ask().await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "hello");
    assert_eq!(
        model.requests().last().unwrap().credential.as_deref(),
        Some("sk-secret"),
        "the caller's credential is replaced by the route's"
    );
    assert_eq!(gate.open_routes(), 1);
    gate.close(&route.token);
    assert_eq!(gate.open_routes(), 0);
    let refused = ask().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(model.requests().len(), 1, "nothing reached the model");
}

/// The gate forwards on a runtime of its own: a model request is answered while the
/// runtime that started the gate (the service's, busy with a step's events) cannot run
/// anything. Here that runtime's one thread waits for the request itself.
#[tokio::test(flavor = "current_thread")]
async fn the_gate_forwards_while_the_runtime_that_started_it_is_blocked() {
    let script = json!({"scenarios": [{"name": "hi", "turns": [{"steps": [{"text": "hello"}]}]}]});
    // The model too answers from a thread of its own, as a provider would from elsewhere.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let model = model(script).await;
            sender.send(model.base_url()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let base_url = receiver.recv().unwrap();
    let gate = ModelGate::start().await.unwrap();
    let route = gate.open(&base_url, "sk-secret", ProviderKind::OpenAi);
    let asking = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let rest = route.base_url.strip_prefix("http://").unwrap();
        let (addr, path) = rest.split_once('/').unwrap();
        let body = json!({"model": "coder", "stream": false,
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            tcp,
            "POST /{path}/chat/completions HTTP/1.1\r\nhost: {addr}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let read = tcp.read_to_string(&mut answer);
        (read.map_err(|e| e.to_string()), answer)
    });
    // Blocks this runtime's only thread until the answer is in (or the read timed out).
    let (read, answer) = asking.join().unwrap();
    assert!(
        read.is_ok(),
        "no answer while the runtime was blocked: {read:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("hello"), "{answer}");
}

/// A route opened inside a sandbox is served at its own endpoint only: a Unix socket bound
/// into the sandbox (a forwarder connects its loopback to it), or a listener already on the
/// sandbox's loopback; not at another sandbox's, nor on the gate's loopback port.
#[tokio::test]
async fn a_sandbox_route_is_served_at_its_endpoint_only() {
    let model = model(json!({"scenarios": [{"name": "hi", "turns": [
        {"steps": [{"text": "hello"}]}, {"steps": [{"text": "again"}]}
    ]}]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let own = scratch.path().join("own.sock");
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let other_root = format!("http://{}", listener.local_addr().unwrap());
    let gate = ModelGate::start().await.unwrap();
    let route = gate
        .open_inside(
            &GateEndpoint::Socket(own.clone()),
            "http://127.0.0.1:3129",
            &model.base_url(),
            None,
            ProviderKind::OpenAi,
        )
        .unwrap();
    assert!(
        route.base_url.starts_with("http://127.0.0.1:3129/"),
        "{route:?}"
    );
    let second = gate
        .open_inside(
            &GateEndpoint::Listener(std::sync::Arc::new(listener)),
            "http://127.0.0.1:3129",
            &model.base_url(),
            None,
            ProviderKind::OpenAi,
        )
        .unwrap();
    let body = json!({"model": "coder", "stream": false,
        "messages": [{"role": "user", "content": "hi"}]});
    let over = |socket: &std::path::Path| {
        reqwest::Client::builder()
            .unix_socket(socket)
            .build()
            .unwrap()
    };
    let ask = |client: reqwest::Client, root: &str, token: &str| {
        client
            .post(format!("{root}/{token}/chat/completions"))
            .timeout(std::time::Duration::from_secs(2))
            .json(&body)
            .send()
    };
    let inside = "http://127.0.0.1:3129";
    let answer = ask(over(&own), inside, &route.token).await.unwrap();
    assert_eq!(answer.status(), 200);
    // The listener serves its own route, and not the socket's.
    let plain = reqwest::Client::new();
    let answer = ask(plain.clone(), &other_root, &second.token)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let refused = ask(plain.clone(), &other_root, &route.token).await.unwrap();
    assert_eq!(refused.status(), 404);
    // Nor does the gate's loopback port.
    let loopback = gate.open(&model.base_url(), "k", ProviderKind::OpenAi);
    let port_root = loopback.base_url.rsplit_once('/').unwrap().0.to_owned();
    let via_port = ask(plain.clone(), &port_root, &route.token).await.unwrap();
    assert_eq!(via_port.status(), 404);
    assert_eq!(
        model.requests().len(),
        2,
        "each endpoint reached the model with its own route only"
    );
    gate.close(&route.token);
    assert!(!own.exists(), "the socket goes with the route");
    assert!(ask(over(&own), inside, &route.token).await.is_err());
    gate.close(&second.token);
    // Refused: by the route's server, while its end is on the way, then by no one at all.
    let after = ask(plain, &other_root, &second.token).await;
    assert!(
        after.as_ref().map_or(true, |a| a.status() == 404),
        "{after:?}"
    );
    assert_eq!(model.requests().len(), 2);
}
