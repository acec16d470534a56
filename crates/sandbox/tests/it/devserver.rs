//! The dev server as a sandbox service: confined, reached through its socket, restarted
//! after a crash, and gone with its sandbox (stop, TTL expiry, the controller's drop).
//! `vite_serves_the_template_under_the_live_base` needs the npm registry.

use std::path::Path;
use std::time::Duration;

use draftsmith_sandbox::{
    DevEndpoint, DevServerSpec, DevServerState, DevServerStatus, HMR_PATH, LIVE_BASE,
    SandboxController, SandboxId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Deployment, Env, eventually, manifest, marker, pids_with};

/// A tiny dev server: answers every request with its marker and `PORT`.
fn node_server(mark: &str) -> DevServerSpec {
    let script = format!(
        "require('http').createServer((q, s) => s.end('dev {mark} ' + q.url)).listen(+process.env.DRAFTSMITH_PREVIEW_PORT, '127.0.0.1')"
    );
    DevServerSpec {
        command: format!("exec node -e \"{script}\" {mark}"),
        port: 5173,
        env: Vec::new(),
    }
}

/// `GET path` through the dev server's endpoint; the whole answer.
async fn get(status: &DevServerStatus, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    match &status.endpoint {
        DevEndpoint::Unix(socket) => {
            let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            s.read_to_end(&mut answer).await.unwrap();
        }
        DevEndpoint::Tcp(port) => {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            s.read_to_end(&mut answer).await.unwrap();
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

async fn seeded(env: &Env, name: &str, ttl: Duration) -> SandboxId {
    let id = env.sandbox(name, ttl).await;
    let (entries, blobs) = manifest(&[("index.html", b"<p>hi</p>")]);
    env.ctl.refresh(&id, &entries, &blobs).await.unwrap();
    id
}

async fn live(
    ctl: &dyn SandboxController,
    id: &SandboxId,
    spec: &DevServerSpec,
) -> DevServerStatus {
    let status = ctl.dev_server(id, Some(spec)).await.unwrap().unwrap();
    assert_eq!(status.state, DevServerState::Live, "{status:?}");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_is_confined_reached_through_its_socket_and_restarted_after_a_crash() {
    let env = Env::new(Deployment::Local).await;
    let id = seeded(&env, "dev-crash", Duration::from_secs(600)).await;
    let mark = marker();
    let spec = node_server(&mark);
    assert!(env.ctl.dev_server(&id, None).await.unwrap().is_none());

    let status = live(env.ctl.as_ref(), &id, &spec).await;
    assert!(
        matches!(status.endpoint, DevEndpoint::Unix(_)),
        "{status:?}"
    );
    let answer = get(&status, "/x").await;
    assert!(answer.contains(&format!("dev {mark} /x")), "{answer}");
    // Asked again while it runs: the same process, not a second one.
    let again = live(env.ctl.as_ref(), &id, &spec).await;
    assert_eq!(again.pid, status.pid);

    // Killed from outside: restarted, and the UI can tell.
    let node: Vec<u32> = pids_with(&mark)
        .into_iter()
        .filter(|pid| comm(*pid) == "node")
        .collect();
    assert_eq!(node.len(), 1, "one node process: {node:?}");
    draftsmith_process::kill_pid(node[0]);
    let restarted = eventually(Duration::from_secs(30), || {
        let status = futures_now(env.ctl.dev_server(&id, None));
        status.is_some_and(|s| s.restarts >= 1 && s.state == DevServerState::Live)
    })
    .await;
    let status = env.ctl.dev_server(&id, None).await.unwrap().unwrap();
    assert!(restarted, "{status:?}");
    assert!(
        status
            .output
            .iter()
            .any(|l| l.contains("the dev server exited")),
        "{:?}",
        status.output
    );
    assert!(get(&status, "/y").await.contains(&format!("dev {mark} /y")));

    env.ctl.stop(&id).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&mark).is_empty()).await,
        "left behind: {:?}",
        pids_with(&mark)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_dies_with_its_expired_sandbox_and_with_the_controller() {
    let env = Env::new(Deployment::Local).await;
    let expiring = seeded(&env, "dev-ttl", Duration::from_millis(1500)).await;
    let kept = seeded(&env, "dev-kept", Duration::from_secs(600)).await;
    let (mark_a, mark_b) = (marker(), marker());
    live(env.ctl.as_ref(), &expiring, &node_server(&mark_a)).await;
    live(env.ctl.as_ref(), &kept, &node_server(&mark_b)).await;
    assert!(!pids_with(&mark_a).is_empty());

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let reaped = env.ctl.reap_expired().await.unwrap();
    assert_eq!(reaped, vec![expiring.clone()]);
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&mark_a).is_empty()).await,
        "left behind: {:?}",
        pids_with(&mark_a)
    );
    assert!(
        !pids_with(&mark_b).is_empty(),
        "the other sandbox's server survives"
    );

    // The service going away takes every dev server with it.
    drop(env);
    assert!(
        eventually(Duration::from_secs(10), || pids_with(&mark_b).is_empty()).await,
        "left behind: {:?}",
        pids_with(&mark_b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_failing_is_left_crashed_with_its_output() {
    let env = Env::new(Deployment::Local).await;
    let id = seeded(&env, "dev-fail", Duration::from_secs(600)).await;
    let spec = DevServerSpec {
        command: "echo 'Error: broken vite.config.js' >&2; exit 3".into(),
        port: 5173,
        env: Vec::new(),
    };
    let status = env.ctl.dev_server(&id, Some(&spec)).await.unwrap().unwrap();
    assert_eq!(status.state, DevServerState::Crashed, "{status:?}");
    assert!(
        status
            .output
            .iter()
            .any(|l| l.contains("broken vite.config.js")),
        "{:?}",
        status.output
    );
    let given_up = eventually(Duration::from_secs(30), || {
        futures_now(env.ctl.dev_server(&id, None))
            .is_some_and(|s| s.output.iter().any(|l| l.contains("not restarted")))
    })
    .await;
    assert!(given_up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vite_serves_the_template_under_the_live_base() {
    let env = Env::new(Deployment::Local).await;
    let id = env.sandbox("dev-vite", Duration::from_secs(600)).await;
    let template = draftsmith_templates::find("vite-react").unwrap();
    let files = template.files();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let (entries, blobs) = manifest(&files);
    env.ctl.refresh(&id, &entries, &blobs).await.unwrap();
    assert!(env.ctl.prepare_dependencies(&id).await.unwrap());
    let draftsmith_templates::Live::DevServer(dev) = template.live else {
        panic!("vite-react has a dev server");
    };
    let spec = DevServerSpec {
        command: dev.command.into(),
        port: dev.port,
        env: vec![
            ("DRAFTSMITH_PREVIEW_BASE".into(), LIVE_BASE.into()),
            ("DRAFTSMITH_PREVIEW_HMR_PATH".into(), HMR_PATH.into()),
        ],
    };
    let status = live(env.ctl.as_ref(), &id, &spec).await;
    let page = get(&status, LIVE_BASE).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(&format!("{LIVE_BASE}@vite/client")), "{page}");
    assert!(page.contains(&format!("{LIVE_BASE}src/main.jsx")), "{page}");
    let client = get(&status, &format!("{LIVE_BASE}@vite/client")).await;
    assert!(
        client.contains(&format!("{LIVE_BASE}{HMR_PATH}")),
        "the HMR path"
    );
    let pid = status.pid;
    let workspace = env.workspace(&id);
    env.ctl.stop(&id).await.unwrap();
    assert!(!draftsmith_process::is_running(pid));
    assert!(
        eventually(Duration::from_secs(10), || draftsmith_process::pids_under(
            &workspace
        )
        .is_empty())
        .await
    );
}

/// The process name of `pid`.
fn comm(pid: u32) -> String {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Runs a status query to completion from a synchronous check.
fn futures_now<
    F: std::future::Future<Output = Result<Option<DevServerStatus>, draftsmith_sandbox::SandboxError>>,
>(
    future: F,
) -> Option<DevServerStatus> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future)).unwrap()
}
