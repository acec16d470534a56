//! The sandbox's one network namespace: every command of a sandbox joins the same one (so
//! a dev server one command starts answers the next on loopback), another sandbox is in
//! another, and nothing holds it once the sandbox stops.

use tokio_util::sync::CancellationToken;

use super::{GONE, HOUR, exec, run};
use crate::support::{Deployment, Env, eventually, marker, pids_with};

/// The port the dev server listens on, inside the sandbox's namespace only.
const PORT: u16 = 8765;

/// The output of `script`, which must succeed.
async fn output(env: &Env, id: &draftsmith_sandbox::SandboxId, script: &str) -> String {
    let (code, output) = run(env, id, script).await;
    assert_eq!(code, Some(0), "{output}");
    output
}

pub(super) async fn a_dev_server_answers_later_commands_of_its_sandbox_only(d: Deployment) {
    let env = Env::new(d).await;
    let (a, b) = (
        env.sandbox("dev-a", HOUR).await,
        env.sandbox("dev-b", HOUR).await,
    );
    std::fs::write(env.workspace(&a).join("hello.txt"), b"HELLO-FROM-A\n").unwrap();
    let ns_a = output(&env, &a, "readlink /proc/self/ns/net").await;
    let held = env.local.network_namespace(&a).expect("a namespace");
    let inode = held.upgrade().unwrap().inode();
    assert_eq!(ns_a.trim(), format!("net:[{inode}]"));
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(host.to_string_lossy(), ns_a.trim(), "the host's namespace");
    let ns_b = output(&env, &b, "readlink /proc/self/ns/net").await;
    assert_ne!(ns_a.trim(), ns_b.trim(), "two sandboxes share a namespace");

    let m = marker();
    let server = format!("python3 -m http.server {PORT} --bind 127.0.0.1 # {m}");
    let (ctl, id, stop_server) = (env.ctl.clone(), a.clone(), CancellationToken::new());
    let token = stop_server.clone();
    let serving = tokio::spawn(async move { ctl.exec(&id, exec(&server, HOUR), token).await });
    let fetch = format!(
        "readlink /proc/self/ns/net; for i in $(seq 200); do \
         curl -sf http://127.0.0.1:{PORT}/hello.txt && exit 0; sleep 0.05; done; echo NEVER-ANSWERED"
    );
    let fetched = output(&env, &a, &fetch).await;
    assert!(fetched.contains(ns_a.trim()), "{fetched}");
    assert!(fetched.contains("HELLO-FROM-A"), "{fetched}");
    let other = output(
        &env,
        &b,
        &format!("curl -sf -m 5 http://127.0.0.1:{PORT}/hello.txt || echo UNREACHABLE"),
    )
    .await;
    assert!(
        other.contains("UNREACHABLE") && !other.contains("HELLO"),
        "{other}"
    );

    stop_server.cancel();
    assert!(serving.await.unwrap().unwrap().cancelled);
    assert!(eventually(GONE, || pids_with(&m).is_empty()).await);
    assert!(held.upgrade().is_some(), "the namespace outlives a command");
    env.ctl.stop(&a).await.unwrap();
    assert!(
        eventually(GONE, || held.upgrade().is_none()).await,
        "the stopped sandbox's namespace is still held"
    );
    assert!(env.local.network_namespace(&b).is_some());
}
