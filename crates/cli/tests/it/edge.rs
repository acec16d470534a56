//! The HTTP edge over raw TCP (issue 13, defects 3 and 7): a connection that sends a
//! partial head, nothing, a stalled body or sits idle is closed in bounded time; one
//! over the connection cap is answered 503 and closed; an event stream outlives both
//! timeouts; and requests refused below the router still get the error envelope.

use std::time::{Duration, Instant};

use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_service::Config;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ADMIN_TOKEN, StoreKind, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::runs::{new_app, start_run};

fn short_limits(config: &mut Config) {
    config.http.header_timeout = Duration::from_secs(1);
    config.http.idle_timeout = Duration::from_millis(1500);
    config.http.body_timeout = Duration::from_secs(1);
}

async fn server(max_connections: usize) -> TestServer {
    let mut config = Config::default();
    short_limits(&mut config);
    config.http.max_connections = max_connections;
    TestServer::start_with(StoreKind::Sqlite, config).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base_url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or 10 s pass); what it sent and when
/// it closed.
async fn until_closed(tcp: &mut TcpStream, start: Instant) -> (String, Duration) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after 10 s; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

/// Status and envelope of one raw response.
fn envelope(raw: &str) -> (u16, Value) {
    let status = raw
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(body["error"]["code"].is_string(), "{body}");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_in_bounded_time() {
    let server = server(64).await;
    // Slowloris: a header line every 300 ms never completes the head.
    let mut slow = connect(&server).await;
    let start = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    trickle.await;
    let (_, took) = until_closed(&mut slow, start).await;
    assert!(took < Duration::from_secs(4), "slowloris lasted {took:?}");

    // Nothing at all.
    let mut silent = connect(&server).await;
    let (sent, took) = until_closed(&mut silent, Instant::now()).await;
    assert!(
        took < Duration::from_secs(3),
        "a silent connection lasted {took:?}"
    );
    assert!(sent.is_empty(), "{sent}");

    // Kept alive after a response, then idle.
    let mut kept = connect(&server).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (sent, took) = until_closed(&mut kept, Instant::now()).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(
        took < Duration::from_secs(4),
        "an idle keep-alive lasted {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_ends_with_an_error_and_a_close() {
    let server = server(64).await;
    // A gigabyte announced, ten bytes sent.
    for (announced, statuses) in [(1_000_000_000u64, [408u16, 413]), (1000, [408, 408])] {
        let mut tcp = connect(&server).await;
        let start = Instant::now();
        let head = format!(
            "POST /admin/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n{{\"name\":\"a"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let (sent, took) = until_closed(&mut tcp, start).await;
        assert!(
            took < Duration::from_secs(4),
            "{announced}: open for {took:?}"
        );
        let (status, body) = envelope(&sent);
        assert!(statuses.contains(&status), "{announced}: {sent}");
        if status == 408 {
            assert_eq!(body["error"]["code"], "REQUEST_TIMEOUT");
        }
    }
    let apps: Value = server.admin().get("/admin/apps", 200).await;
    assert_eq!(apps["apps"], json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_with_503() {
    let mut config = Config::default();
    config.http.max_connections = 3;
    config.http.header_timeout = Duration::from_secs(30);
    let server = TestServer::start_with(StoreKind::Sqlite, config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect(&server).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(tcp);
    }
    let mut extra = connect(&server).await;
    let (sent, took) = until_closed(&mut extra, Instant::now()).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    let (status, body) = envelope(&sent);
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    // A freed slot is served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut tcp = connect(&server).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (sent, _) = until_closed(&mut tcp, Instant::now()).await;
        if sent.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {sent}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_timeouts() {
    let script = r#"{"scenarios": [{"name": "slow", "turns": [{"steps": [{"delay_ms": 4000}, {"text": "done"}]}]}]}"#;
    let model = MockModel::start(Script::from_json(script).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    short_limits(&mut config);
    let mut server = TestServer::start_with(StoreKind::Sqlite, config).await;
    server.model = Some(model);
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "wait"})).await;
    let start = Instant::now();
    let events = collect(&admin, &run.stream_url, None).await;
    assert!(
        start.elapsed() > Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    let last = events.last().unwrap();
    assert_eq!(last.body.event_type(), "run.completed", "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_below_the_router_get_the_envelope() {
    let server = server(64).await;
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 * 1024));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(1 << 20)
    );
    let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "NUL",
            b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("CR", b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        (
            "TAB",
            b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "space",
            b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        ("64 KiB URL", long.into_bytes(), 414),
        ("1 MiB header", big_header.into_bytes(), 431),
        ("120 headers", many.into_bytes(), 431),
    ];
    for (name, request, expected) in cases {
        let mut tcp = connect(&server).await;
        let _ = tcp.write_all(&request).await;
        let (sent, took) = until_closed(&mut tcp, Instant::now()).await;
        assert!(took < Duration::from_secs(3), "{name}: {took:?}");
        let (status, body) = envelope(&sent);
        assert_eq!(status, expected, "{name}: {sent}");
        let code = match expected {
            414 => "URI_TOO_LONG",
            431 => "HEADERS_TOO_LARGE",
            _ => "VALIDATION_FAILED",
        };
        assert_eq!(body["error"]["code"], code, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_is_not_an_idle_connection() {
    // A handler that works longer than the idle timeout before it answers (a publish
    // building the app) keeps its connection; the idle timer starts again after it.
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            "done"
        }),
    );
    let limits = draftsmith_server::edge::HttpConfig {
        idle_timeout: Duration::from_millis(500),
        header_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(draftsmith_server::edge::serve(
        listener,
        app,
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    tcp.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (sent, took) = until_closed(&mut tcp, start).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(sent.ends_with("done"), "{sent}");
    // Then idle again: closed by the timers, not left open.
    assert!(took < Duration::from_secs(4), "{took:?}");
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}
