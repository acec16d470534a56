//! Server lifecycle: confinement wrappers, start failures, a missing binary, an external
//! server, and a server that dies — always with no process left behind.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use draftsmith_core::{ErrorCode, EventBody};
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{
    ExternalServer, INSTALL_HINT, Launch, LaunchFn, OpencodeConfig, OpencodeEngine, OpencodeServer,
    OpencodeSettings, ServerOptions, StartError, descendants, is_running,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

fn write_script(name: &str, text: &str) -> serde_json::Value {
    json!({"name": name, "match": {"contains": name}, "turns": [
        {"steps": [{"tool_call": {"id": format!("call_{name}"), "name": "write",
            "arguments": {"filePath": format!("{name}.txt"), "content": text}}}]},
        {"steps": [{"text": format!("{name} done.")}]}
    ]})
}

/// bubblewrap with the system read-only and only the workspace and a HOME beside it
/// writable; the install directory it is given stays visible over the private /tmp.
fn bwrap() -> LaunchFn {
    Arc::new(|workspace: &Path, install: &Path| {
        let home = workspace.with_file_name("confined-home");
        let mut argv: Vec<String> = [
            "bwrap",
            "--die-with-parent",
            "--new-session",
            "--unshare-pid",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        .map(str::to_owned)
        .to_vec();
        // The installed OpenCode may itself live under /tmp (a fresh clone there): bring it
        // back, read-only, over the private /tmp.
        let install = install.display().to_string();
        argv.extend(["--ro-bind".to_owned(), install.clone(), install]);
        for dir in [workspace, home.as_path()] {
            let dir = dir.display().to_string();
            argv.extend(["--bind".to_owned(), dir.clone(), dir]);
        }
        argv.extend([
            "--chdir".into(),
            workspace.display().to_string(),
            "--".into(),
        ]);
        Ok(Launch {
            home,
            env: Vec::new(),
            confinement: argv,
            prepare: None,
            network: None,
        })
    })
}

#[tokio::test]
async fn a_confined_server_works_and_dies_with_its_whole_tree() {
    let model = model(json!({"scenarios": [write_script("CONFINED", "inside\n")]})).await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(OpencodeConfig {
        launch: Some(bwrap()),
        ..config(scratch.path())
    });
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "CONFINED"),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "CONFINED done.".into()
        }
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("CONFINED.txt")).unwrap(),
        "inside\n"
    );
    eprintln!("confined: {:?}", engine.timings(&ws));
    let pid = engine.server_pid(&ws).await.unwrap();
    let mut tree = descendants(pid);
    assert!(!tree.is_empty(), "opencode runs below the wrapper");
    tree.push(pid);
    shut_down(&engine, &tree).await;
}

#[tokio::test]
async fn start_failures_are_reported_and_leave_no_process() {
    let scratch = tempfile::tempdir().unwrap();
    let fake = |name: &str, body: &str| {
        let path = scratch.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        path
    };
    let pid_file = scratch.path().join("hang.pid");
    let options = |binary| ServerOptions {
        binary,
        workspace: scratch.path().to_path_buf(),
        home: scratch.path().join("home"),
        env: Vec::new(),
        config_json: "{}".into(),
        confinement: Vec::new(),
        prepare: None,
        start_timeout: Duration::from_secs(2),
        password: None,
        network: None,
    };
    let hang = fake(
        "hang",
        &format!("echo $$ > {}\nexec sleep 60", pid_file.display()),
    );
    let err = OpencodeServer::start(options(hang)).await.unwrap_err();
    assert!(matches!(err, StartError::Timeout { .. }), "{err}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_gone(&[pid]).await;

    let crash = fake("crash", "echo boom >&2\nexit 3");
    let err = OpencodeServer::start(options(crash)).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StartError::Exited { .. }) && message.contains("boom"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_binary_fails_the_run_with_the_install_hint() {
    let model =
        model(json!({"scenarios": [{"name": "any", "turns": [{"steps": [{"text": "no"}]}]}]}))
            .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(OpencodeConfig {
        binary: Some(scratch.path().join("no-opencode-here")),
        ..config(scratch.path())
    });
    let finished = engine
        .run(
            job(&model, &ws, "x"),
            &RecordingSink::default(),
            CancellationToken::new(),
        )
        .await;
    let Outcome::Failed { error } = finished.outcome else {
        panic!("{:?}", finished.outcome)
    };
    assert_eq!(error.code, ErrorCode::CodingAgentOpencodeStartFailed);
    assert!(error.message.contains(INSTALL_HINT), "{}", error.message);
}

#[tokio::test]
async fn an_external_server_is_used_without_spawning_one() {
    let model = model(json!({"scenarios": [write_script("EXTERNAL", "external\n")]})).await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let elsewhere = workspace(scratch.path(), "server-cwd");
    let job = job(&model, &ws, "EXTERNAL");
    let server = OpencodeServer::start(ServerOptions {
        binary: opencode_binary(),
        workspace: elsewhere,
        home: scratch.path().join("external-home"),
        env: Vec::new(),
        config_json: OpencodeSettings::for_model(&job.model, &[]).to_json(),
        confinement: Vec::new(),
        prepare: None,
        start_timeout: START_TIMEOUT,
        password: Some("shared-secret".into()),
        network: None,
    })
    .await
    .unwrap();
    let engine = OpencodeEngine::new(OpencodeConfig {
        external: Some(ExternalServer {
            base_url: server.client().base_url().to_owned(),
            password: Some("shared-secret".into()),
        }),
        ..config(scratch.path())
    });
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(job, &sink, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "EXTERNAL done.".into()
        }
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("EXTERNAL.txt")).unwrap(),
        "external\n"
    );
    assert!(engine.server_pid(&ws).await.is_none(), "nothing spawned");
    let pid = server.pid().unwrap();
    engine.shutdown().await;
    assert!(
        is_running(pid),
        "the engine must not stop somebody else's server"
    );
    server.stop().await;
    assert_gone(&[pid]).await;
}

#[tokio::test]
async fn a_server_that_dies_fails_its_run_and_is_replaced_for_the_next() {
    let model = model(json!({"scenarios": [
        {"name": "slow", "match": {"contains": "SCENARIO_DIES"}, "turns": [
            {"steps": [{"text": "Starting"}, {"delay_ms": 60000}]}
        ]},
        write_script("AFTER", "after\n")
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let run = engine.run(
        job(&model, &ws, "SCENARIO_DIES"),
        &sink,
        CancellationToken::new(),
    );
    let killer = async {
        sink.wait_for(|e| matches!(e, EventBody::AssistantDelta { .. }))
            .await;
        let pid = engine.server_pid(&ws).await.unwrap();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        pid
    };
    let (finished, dead) = tokio::time::timeout(RUN_TIMEOUT, async { tokio::join!(run, killer) })
        .await
        .unwrap();
    let Outcome::Failed { error } = finished.outcome else {
        panic!("{:?}", finished.outcome)
    };
    assert_eq!(error.code, ErrorCode::CodingAgentOpencodeStartFailed);
    assert!(
        error.message.contains("exited during the run"),
        "{}",
        error.message
    );
    assert_eq!(finished.transcript, "Starting");

    let next = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(job(&model, &ws, "AFTER"), &next, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "AFTER done.".into()
        }
    );
    assert!(!engine.timings(&ws).unwrap().server_reused);
    let pid = engine.server_pid(&ws).await.unwrap();
    assert_ne!(pid, dead);
    shut_down(&engine, &[pid, dead]).await;
}

/// A server that refuses every prompt with `status`, and otherwise answers as an idle
/// OpenCode does: a session, an event stream that stays open, nothing busy.
async fn refusing_server(status: u16) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    let refused = StatusCode::from_u16(status).unwrap();
    let events = || async {
        let hello = futures::stream::once(async {
            Ok::<_, std::io::Error>("data: {\"type\":\"server.connected\",\"properties\":{}}\n\n")
        });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::from_stream(futures::StreamExt::chain(
                hello,
                futures::stream::pending(),
            )))
            .unwrap()
    };
    let app =
        axum::Router::new()
            .route(
                "/global/health",
                get(|| async { axum::Json(json!({"healthy": true})) }),
            )
            .route(
                "/session",
                post(|| async { axum::Json(json!({"id": "ses_refused"})) }),
            )
            .route("/event", get(events))
            .route(
                "/session/{id}/message",
                post(move || async move {
                    (refused, axum::Json(json!({"name": "Refused", "data": {}})))
                })
                .get(|| async { axum::Json(json!([])) }),
            )
            .route("/session/{id}/abort", post(|| async { axum::Json(true) }))
            .route("/session/status", get(|| async { axum::Json(json!({})) }))
            .route("/permission", get(|| async { axum::Json(json!([])) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, serving)
}

/// A prompt the server refuses ends the run at once, by what the refusal says: a 4xx is
/// the prompt OpenCode would not take (`CODING_AGENT_OPENCODE_START_FAILED`), a 5xx a
/// failure on its side (`CODING_AGENT_MODEL_ERROR`), each naming the status; neither waits
/// for events that will not come.
#[tokio::test]
async fn a_refused_prompt_fails_the_run_by_its_status() {
    let model = model(json!({"scenarios": [write_script("REFUSED", "never\n")]})).await;
    for (status, code) in [
        (400, ErrorCode::CodingAgentOpencodeStartFailed),
        (500, ErrorCode::CodingAgentModelError),
    ] {
        let scratch = tempfile::tempdir().unwrap();
        let ws = workspace(scratch.path(), "app");
        let (url, serving) = refusing_server(status).await;
        let engine = OpencodeEngine::new(OpencodeConfig {
            external: Some(ExternalServer {
                base_url: url,
                password: None,
            }),
            ..config(scratch.path())
        });
        let sink = RecordingSink::default();
        let finished = tokio::time::timeout(
            Duration::from_secs(20),
            engine.run(job(&model, &ws, "REFUSED"), &sink, CancellationToken::new()),
        )
        .await
        .expect("a refused prompt must end the run, not leave it waiting");
        let Outcome::Failed { error } = finished.outcome else {
            panic!("{status}: {:?}", finished.outcome);
        };
        assert_eq!(error.code, code, "{status}: {}", error.message);
        assert!(
            error.message.contains(&status.to_string()),
            "{status}: {}",
            error.message
        );
        engine.shutdown().await;
        serving.abort();
    }
    assert!(model.requests().is_empty(), "no model call was made");
}
