//! Confinement: nothing of the service or of other sandboxes is visible inside.

use std::time::Duration;

use pretty_assertions::assert_eq;
use tokio_util::sync::CancellationToken;

use super::{HOUR, exec};
use crate::support::{Deployment, Env, marker};

pub(super) async fn confinement_hides_service_and_other_sandboxes(d: Deployment) {
    let env = Env::new(d).await;
    let a = env.sandbox("conf-a", HOUR).await;
    let b = env.sandbox("conf-b", HOUR).await;
    let data = env.data_dir();
    let (ws_a, ws_b) = (env.workspace(&a), env.workspace(&b));
    std::fs::write(ws_b.join("b-secret.txt"), b"B-ONLY").unwrap();
    let tmp_mark = format!("/tmp/sandbox-private-{}", marker());
    let script = format!(
        "cat {db} ; cat {b}/b-secret.txt ; ls {cache} ; \
         echo mine > own.txt && echo home > \"$HOME/h.txt\" && echo t > {tmp} && echo WROTE ; \
         echo \"procs:$(ls /proc | grep -c '^[0-9]*$')\" ; echo \"envnames:$(env | cut -d= -f1 | sort | tr '\\n' ' ')\"",
        db = data.join("draftsmith.db").display(),
        b = ws_b.display(),
        cache = data.join("cache").display(),
        tmp = tmp_mark,
    );
    let out = env
        .ctl
        .exec(
            &a,
            exec(&script, Duration::from_secs(30)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let text = out.output.clone();
    assert!(!text.contains("TOP-SECRET-DATABASE"), "{text}");
    assert!(!text.contains("B-ONLY"), "{text}");
    assert!(text.contains("WROTE"), "{text}");
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    let procs: usize = line("procs:").trim().parse().unwrap();
    assert!(procs < 10, "the host's processes are visible: {procs}");
    // The egress proxy's settings are the sandbox's own (they point at its loopback).
    let allowed = [
        "HOME",
        "LANG",
        "OLDPWD",
        "PATH",
        "PWD",
        "SHLVL",
        "TERM",
        "_",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    for name in line("envnames:").split_whitespace() {
        assert!(allowed.contains(&name), "{name} leaked into the sandbox");
    }
    assert_eq!(std::fs::read(ws_a.join("own.txt")).unwrap(), b"mine\n");
    let home = ws_a.parent().unwrap().join("home/h.txt");
    assert_eq!(std::fs::read(home).unwrap(), b"home\n");
    assert!(
        !std::path::Path::new(&tmp_mark).exists(),
        "/tmp is the host's"
    );
    let peek = env
        .ctl
        .exec(
            &b,
            exec(&format!("cat {tmp_mark}"), Duration::from_secs(30)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_ne!(peek.exit_code, Some(0), "B saw A's /tmp: {}", peek.output);
    let tool =
        serde_json::json!({"command": format!("cat {}", data.join("draftsmith.db").display())});
    let outcome = env
        .ctl
        .run_tool(
            &a,
            "run_command",
            &tool.to_string(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(
        !outcome.output.to_string().contains("TOP-SECRET"),
        "{:?}",
        outcome.output
    );
}
