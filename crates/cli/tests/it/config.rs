//! Start-up refuses a bad configuration value, naming where it came from, before it
//! touches anything.

use std::process::Stdio;
use std::time::Duration;

use crate::support::binary;

/// `serve` with `vars` set: its exit status and what it printed to stderr.
async fn serve_with(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(binary());
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("DRAFTSMITH_DATA_DIR", dir.path().join("data"))
        .env("DRAFTSMITH_LISTEN", "127.0.0.1:0")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("serve kept running with a bad value")
        .unwrap();
    assert!(
        !dir.path().join("data").join("draftsmith.db").exists(),
        "the database was opened before the configuration was checked"
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_environment_value_stops_the_start_naming_the_variable() {
    for (var, value) in [
        (
            "APPS_DRAFT_DEV_CONTROLLER_OPENCODE_START_TIMEOUT_SECONDS",
            "abc",
        ),
        ("APPS_CODING_AGENT_NATIVE_ENABLED", "sometimes"),
        ("DRAFTSMITH_SANDBOX_MEMORY_MIB", "lots"),
        ("DRAFTSMITH_BUDGET_USER_DAILY_COST", "a dollar"),
        ("DRAFTSMITH_FAIR_USE_INSTANCE_SANDBOXES", "-2"),
        ("DRAFTSMITH_METRICS", "sometimes"),
    ] {
        let (status, stderr) = serve_with(&[(var, value)]).await;
        assert!(!status.success(), "{var}={value} started");
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
}
