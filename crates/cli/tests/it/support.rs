//! Where the binary under test is. (`both_stores!`, which runs a test body on each store,
//! comes from the testkit.)

use std::path::PathBuf;

/// The `draftsmith` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_draftsmith"))
}

/// `draftsmith ARGS… --url BASE` as the test admin: its exit code and everything it
/// printed (stdout, then stderr).
pub async fn cli(base: &str, args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(binary())
        .args(args)
        .args(["--url", base])
        .env("DRAFTSMITH_TOKEN", draftsmith_testkit::ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}
