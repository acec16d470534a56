//! The network boundary at the controller: a sandbox's commands have only loopback and,
//! with the proxy, its variables and socket; `egress = "none"` leaves no way out at all;
//! each sandbox's proxy socket is its own and goes when the sandbox stops.
//!
//! SAFETY: every script checks it is in a private network namespace before any connect.

use std::sync::Arc;
use std::time::Duration;

use draftsmith_sandbox::{
    EgressPolicy, ExecRequest, IsolationMode, LocalController, SandboxController,
};
use tokio_util::sync::CancellationToken;

use crate::support::unique_id;

const PRIVATE_OR_ABORT: &str = "\
if [ \"$(grep -vc '^Iface' /proc/net/route)\" != 0 ] || [ \"$(grep -c ':' /proc/net/dev)\" != 1 ]; \
then echo NOT_PRIVATE_ABORT; exit 97; fi; echo PRIVATE_NS_OK";

fn controller(dir: &std::path::Path, egress: EgressPolicy) -> Arc<LocalController> {
    let local = LocalController::new(
        dir.join("sandboxes"),
        dir.join("cache"),
        IsolationMode::Bwrap,
    )
    .unwrap()
    .with_egress(egress);
    Arc::new(local)
}

async fn run(ctl: &LocalController, id: &draftsmith_sandbox::SandboxId, script: &str) -> String {
    let request = ExecRequest {
        command: script.into(),
        timeout: Duration::from_secs(30),
        max_output_bytes: 64 * 1024,
        env: Vec::new(),
    };
    let out = ctl
        .exec(id, request, CancellationToken::new())
        .await
        .unwrap();
    assert!(out.output.contains("PRIVATE_NS_OK"), "{}", out.output);
    out.output
}

#[tokio::test]
async fn egress_none_leaves_no_way_out() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ctl = controller(dir.path(), EgressPolicy::None);
    assert_eq!(ctl.egress_in_force(), "none");
    let id = unique_id("none");
    ctl.create(&id, "static", Duration::from_secs(60))
        .await
        .unwrap();
    let script = format!(
        "{PRIVATE_OR_ABORT}; echo \"proxy=[$HTTPS_PROXY]\"; ls -A /run/draftsmith 2>&1 | sed 's/^/RUN:/'; \
         if timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128' 2>/dev/null; then echo PROXY_OPEN; else echo PROXY_CLOSED; fi"
    );
    let output = run(&ctl, &id, &script).await;
    assert!(output.contains("proxy=[]"), "{output}");
    assert!(output.contains("PROXY_CLOSED"), "{output}");
    assert!(!output.contains("egress.sock"), "{output}");
    // One namespace (loopback only) for every command of the sandbox.
    let inode = ctl
        .network_namespace(&id)
        .and_then(|n| n.upgrade())
        .unwrap()
        .inode();
    for _ in 0..2 {
        let seen = run(
            &ctl,
            &id,
            &format!("{PRIVATE_OR_ABORT}; readlink /proc/self/ns/net"),
        )
        .await;
        assert!(seen.contains(&format!("net:[{inode}]")), "{seen}");
    }
    ctl.stop(&id).await.unwrap();
}

#[tokio::test]
async fn each_sandbox_has_its_own_proxy_until_it_stops() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ctl = controller(
        dir.path(),
        EgressPolicy::parse("proxy", ["a.example"]).unwrap(),
    );
    assert_eq!(ctl.egress_in_force(), "proxy");
    assert_eq!(ctl.egress_allowed(), ["a.example"]);
    let (a, b) = (unique_id("a"), unique_id("b"));
    for id in [&a, &b] {
        ctl.create(id, "static", Duration::from_secs(60))
            .await
            .unwrap();
    }
    let script = format!(
        "{PRIVATE_OR_ABORT}; echo \"proxy=[$HTTPS_PROXY]\"; ls -A /run/draftsmith | sed 's/^/RUN:/'; \
         curl -sS -x http://127.0.0.1:3128 http://b.example/ ; echo"
    );
    let output = run(&ctl, &a, &script).await;
    assert!(output.contains("proxy=[http://127.0.0.1:3128]"), "{output}");
    assert!(output.contains("RUN:egress.sock"), "{output}");
    assert!(
        output.contains("b.example is not on the sandbox's egress allow-list"),
        "{output}"
    );
    // The host side: two sandboxes, two sockets; stopping one removes only its own.
    run(&ctl, &b, PRIVATE_OR_ABORT).await;
    let (sock_a, sock_b) = (
        ctl.egress_socket(&a).unwrap(),
        ctl.egress_socket(&b).unwrap(),
    );
    assert_ne!(sock_a, sock_b);
    assert!(sock_a.exists() && sock_b.exists());
    ctl.stop(&a).await.unwrap();
    assert!(!sock_a.exists(), "the stopped sandbox's proxy is gone");
    assert!(ctl.egress_socket(&a).is_none());
    assert!(sock_b.exists());
    let again = run(&ctl, &b, &script).await;
    assert!(again.contains("RUN:egress.sock"), "{again}");
    ctl.stop(&b).await.unwrap();
}

#[tokio::test]
async fn a_namespace_per_process_still_has_only_the_proxy() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let local = LocalController::new(
        dir.path().join("sandboxes"),
        dir.path().join("cache"),
        IsolationMode::Bwrap,
    )
    .unwrap()
    .with_egress(EgressPolicy::parse("proxy", ["a.example"]).unwrap())
    .with_namespace_per_process();
    let id = unique_id("fallback");
    local
        .create(&id, "static", Duration::from_secs(60))
        .await
        .unwrap();
    let script = format!(
        "{PRIVATE_OR_ABORT}; readlink /proc/self/ns/net; \
         curl -sS -x http://127.0.0.1:3128 http://b.example/ ; echo"
    );
    let first = run(&local, &id, &script).await;
    assert!(
        first.contains("b.example is not on the sandbox's egress allow-list"),
        "{first}"
    );
    assert!(local.network_namespace(&id).is_none(), "{first}");
    let second = run(&local, &id, &script).await;
    let ns = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("net:["))
            .map(str::to_owned)
    };
    assert!(
        ns(&first).is_some() && ns(&first) != ns(&second),
        "{first}{second}"
    );
    local.stop(&id).await.unwrap();
}

/// An engine's server (OpenCode) reaches its model gate on the sandbox's `127.0.0.1:3129`.
/// With a namespace of the sandbox's own, that is a listener the controller binds inside it
/// and hands to the gate: no forwarder runs, and the sandbox's processes reach that very
/// listener. With a namespace per process, a forwarder connects the port to the gate's
/// socket instead.
#[tokio::test]
async fn an_engine_reaches_its_gate_on_a_listener_inside_the_sandbox() {
    use draftsmith_sandbox::ServiceGate;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let policy = || EgressPolicy::parse("proxy", ["a.example"]).unwrap();
    let ctl = controller(dir.path(), policy());
    let id = unique_id("engine");
    ctl.create(&id, "static", Duration::from_secs(60))
        .await
        .unwrap();
    let workspace = ctl.workspace_dir(&id).unwrap();
    let launch = ctl.service_launch(&workspace, "opencode", &[]).unwrap();
    let network = launch.network.expect("a network boundary");
    let ServiceGate::Listener(listener) = &network.gate else {
        panic!("no listener: {:?}", network.gate);
    };
    assert_eq!(listener.local_addr().unwrap().to_string(), "127.0.0.1:3129");
    assert!(
        !launch
            .confinement
            .iter()
            .any(|a| a.contains("3129") || a.contains("gate-opencode.sock")),
        "no forwarder for the gate: {:?}",
        launch.confinement
    );
    let output = run(
        &ctl,
        &id,
        &format!(
            "{PRIVATE_OR_ABORT}; if timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3129'; \
             then echo GATE_REACHED; fi"
        ),
    )
    .await;
    assert!(output.contains("GATE_REACHED"), "{output}");
    let mut accepted = false;
    for _ in 0..100 {
        if listener.accept().is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted, "the sandbox's connection came to this listener");
    // The next server of the sandbox (after a model change) gets the same one.
    let again = ctl.service_launch(&workspace, "opencode", &[]).unwrap();
    let Some(ServiceGate::Listener(second)) = again.network.map(|n| n.gate) else {
        panic!("no listener the second time");
    };
    assert_eq!(second.local_addr().unwrap(), listener.local_addr().unwrap());
    ctl.stop(&id).await.unwrap();

    let fallback = LocalController::new(
        dir.path().join("fallback"),
        dir.path().join("cache"),
        IsolationMode::Bwrap,
    )
    .unwrap()
    .with_egress(policy())
    .with_namespace_per_process();
    let id = unique_id("engine-fallback");
    fallback
        .create(&id, "static", Duration::from_secs(60))
        .await
        .unwrap();
    let workspace = fallback.workspace_dir(&id).unwrap();
    let launch = fallback
        .service_launch(&workspace, "opencode", &[])
        .unwrap();
    let network = launch.network.expect("a network boundary");
    assert!(
        matches!(&network.gate, ServiceGate::Socket(path) if path.ends_with("gate-opencode.sock")),
        "{:?}",
        network.gate
    );
    assert!(
        launch
            .confinement
            .iter()
            .any(|a| a.contains("TCP-LISTEN:3129") && a.contains("gate-opencode.sock")),
        "a forwarder for the gate: {:?}",
        launch.confinement
    );
    fallback.stop(&id).await.unwrap();
}
