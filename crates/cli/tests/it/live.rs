//! The live preview over real HTTP: the app's Vite dev server in the chat's sandbox,
//! proxied under the preview's capability URL (page, modules and the HMR WebSocket), a
//! draft edit through the API reaching it, and other users' URLs refused. Needs the npm
//! registry (the template's dependencies).

use std::time::{Duration, Instant};

use draftsmith_core::api::{App, TokenCreated};
use draftsmith_testkit::client::{ApiClient, assert_error};
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runs::{new_app, start_run};

const SCRIPT: &str = include_str!("../fixtures/ui/builder.json");

/// A vite-react app with one finished run (so it has a chat and a warm sandbox) and its
/// live preview URL.
pub async fn live_app(server: &TestServer) -> (App, String) {
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let run = start_run(&admin, &app, json!({"input": "ZQUICK hello"})).await;
    collect(&admin, &run.stream_url, None).await;
    let path = format!("/admin/apps/{}/preview?live=true", app.id);
    let preview: Value = admin.post(&path, &json!({}), 200).await;
    assert_eq!(preview["source"], "live", "{preview}");
    let url = preview["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("/preview/{}/dsl_", app.id)),
        "{url}"
    );
    (app, url)
}

/// Polls `GET url` every `every` until its body contains `needle` (at most 20 s).
async fn until_served(http: &reqwest::Client, url: &str, needle: &str, every: Duration) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = http.get(url).send().await.unwrap().text().await.unwrap();
        if body.contains(needle) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(every).await;
    }
}

async fn put_file(admin: &ApiClient, app: &App, path: &str, content: &str) {
    let answer = admin
        .request(
            Method::PUT,
            &format!("/admin/apps/{}/draft/files/{path}", app.id),
        )
        .header("if-match", "*")
        .body(content.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_server_is_proxied_under_the_capability_url_with_its_hmr_socket() {
    let server = TestServer::with_script(StoreKind::Sqlite, SCRIPT).await;
    let admin = server.admin();
    let (app, url) = live_app(&server).await;
    let http = reqwest::Client::new();
    let base = format!("{}{url}", server.base_url);

    let page = http.get(&base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox allow-scripts")
    );
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("{url}@vite/client")), "{html}");
    assert!(html.contains(&format!("{url}src/main.jsx")), "{html}");
    assert!(!html.contains("__draftsmith_live__"), "{html}");
    let main = http
        .get(format!("{base}src/main.jsx"))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(main.headers()["access-control-allow-origin"], "null");
    let main = main.text().await.unwrap();
    assert!(main.contains(&format!("{url}src/App.jsx")), "{main}");
    let client = http
        .get(format!("{base}@vite/client"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        client.contains(&format!("{url}__hmr")),
        "the HMR path is the preview's"
    );
    let ws_token = client
        .split("const wsToken = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();

    // The HMR socket through the proxy: connected, then told about an edit of the draft.
    let mut socket = websocket(&server.base_url, &format!("{url}__hmr?token={ws_token}")).await;
    assert!(read_until(&mut socket, "\"type\":\"connected\"").await);
    put_file(
        &admin,
        &app,
        "src/App.jsx",
        &app_jsx("Edited through the API"),
    )
    .await;
    assert!(
        read_until(&mut socket, "\"type\":\"update\"").await,
        "an HMR update"
    );
    let app_module = until_served(
        &http,
        &format!("{base}src/App.jsx"),
        "Edited through the API",
        Duration::from_millis(100),
    )
    .await;
    assert!(
        app_module.contains("Edited through the API"),
        "{app_module}"
    );

    // Nothing of the builder reaches it: a cookie or bearer header sent along is dropped,
    // and a file outside what Vite serves is not there.
    let env = http
        .get(format!("{base}@fs/etc/hostname"))
        .send()
        .await
        .unwrap();
    assert_ne!(env.status(), 200);
}

/// An edit of a file right after the dev server served its previous edit reaches it too:
/// round after round, the second edit is served. (Vite's watcher drops a file's second
/// change within 50 ms of the first, so the preview kept the first until the next edit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_right_after_a_served_edit_reaches_the_dev_server() {
    let server = TestServer::with_script(StoreKind::Sqlite, SCRIPT).await;
    let admin = server.admin();
    let (app, url) = live_app(&server).await;
    let http = reqwest::Client::new();
    let module = format!("{}{url}src/App.jsx", server.base_url);
    for round in 0..8 {
        let (first, second) = (format!("First {round}"), format!("Second {round}"));
        put_file(&admin, &app, "src/App.jsx", &app_jsx(&first)).await;
        // Served (so read and cached) as soon as the dev server saw it, then edited again.
        let served = until_served(&http, &module, &first, Duration::ZERO).await;
        assert!(
            served.contains(&first),
            "round {round}: the first edit never came"
        );
        put_file(&admin, &app, "src/App.jsx", &app_jsx(&second)).await;
        let served = until_served(&http, &module, &second, Duration::from_millis(100)).await;
        assert!(served.contains(&second), "round {round}: {served}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_live_preview_is_refused() {
    let server = TestServer::with_script(StoreKind::Sqlite, SCRIPT).await;
    let admin = server.admin();
    let (app, url) = live_app(&server).await;
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let path = format!("/admin/apps/{}/preview?live=true", app.id);
    assert_error(
        &bob.post::<_, Value>(&path, &json!({}), 404).await,
        "NOT_FOUND",
    );
    let status = format!("/admin/apps/{}/preview/live", app.id);
    assert_error(&bob.get::<Value>(&status, 404).await, "NOT_FOUND");
    // Bob's own live token does not open the admin's app.
    let bobs_app = new_app(&bob, "vite-react").await;
    let bob_preview: Value = bob
        .post(
            &format!("/admin/apps/{}/preview?live=true", bobs_app.id),
            &json!({}),
            200,
        )
        .await;
    let bob_token = bob_preview["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let trespass = http
        .get(format!(
            "{}/preview/{}/{bob_token}/",
            server.base_url, app.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(trespass.status(), 404);
    // The admin's own URL works, and the status says the server is live.
    let page = http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let live: Value = admin.get(&status, 200).await;
    assert_eq!(live["state"], "live", "{live}");
    let wrong = http
        .get(format!(
            "{}/preview/{}/dsl_nope.x/",
            server.base_url, app.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

/// The template's App.jsx with `heading` as its `<h1>`.
pub fn app_jsx(heading: &str) -> String {
    format!(
        "export default function App() {{\n  return (\n    <main className=\"app\">\n      <h1 id=\"heading\">{heading}</h1>\n    </main>\n  );\n}}\n"
    )
}

/// A WebSocket client handshake on `path` (the HMR subprotocol), its 101 checked.
async fn websocket(base_url: &str, path: &str) -> tokio::net::TcpStream {
    let host = base_url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: null\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: vite-hmr\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Reads the socket until what came contains `needle` (at most a minute).
async fn read_until(socket: &mut tokio::net::TcpStream, needle: &str) -> bool {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { return false };
        if n == 0 {
            return false;
        }
        seen.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&seen).contains(needle) {
            return true;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_takes_the_dev_server_with_its_sandbox_and_the_preview_starts_another() {
    // Its `fail` scenario comes before `quick`, which the failing run's history names.
    let script = include_str!("../fixtures/ui/live.json");
    let server = TestServer::with_script(StoreKind::Sqlite, script).await;
    let admin = server.admin();
    let (app, url) = live_app(&server).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}{url}", server.base_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let runs: draftsmith_core::api::RunList = admin
        .get(&format!("/admin/apps/{}/coding-agent/runs", app.id), 200)
        .await;
    let session = runs.runs[0].chat_session_id;
    let controller = server.state.runner.controller();
    let id = draftsmith_sandbox::SandboxId::for_chat(session);
    let before = controller.dev_server(&id, None).await.unwrap().unwrap();
    let workspace = controller.workspace_dir(&id).unwrap();

    let run = start_run(
        &admin,
        &app,
        json!({"input": "ZFAIL now", "chat_session_id": session}),
    )
    .await;
    collect(&admin, &run.stream_url, None).await;
    let failed: draftsmith_core::api::Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(failed.status, draftsmith_core::RunStatus::Failed);
    assert!(
        !draftsmith_process::is_running(before.pid),
        "the dev server is gone"
    );
    assert!(draftsmith_process::pids_under(&workspace).is_empty());

    // The preview brings a sandbox back for itself, from the draft.
    let page = http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let after = controller.dev_server(&id, None).await.unwrap().unwrap();
    assert_ne!(after.pid, before.pid);
}
