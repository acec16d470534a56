//! The version check: a binary of another major line (a fake that prints 2.x) is refused
//! when it is resolved, with a message that says why, and a run on it fails at once instead
//! of at the start timeout; the pinned install passes, and what its npm package says is what
//! the binary itself prints.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use draftsmith_core::ErrorCode;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{
    BinaryError, OpencodeConfig, OpencodeEngine, binary_version, check_version, pinned_version,
    resolve_binary,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{RecordingSink, config, job, model, opencode_binary, workspace};

/// An executable shell script at `dir/name` that prints `output` for `--version`.
pub fn fake_opencode(dir: &Path, name: &str, output: &str, status: i32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {status}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn another_major_line_is_refused_with_a_clear_message() {
    let scratch = tempfile::tempdir().unwrap();
    let two = fake_opencode(scratch.path(), "opencode-2", "opencode 2.0.1", 0);
    let err = resolve_binary(Some(&two)).unwrap_err();
    assert!(
        matches!(&err, BinaryError::Unsupported { found, supported: 1, .. } if found == "2.0.1"),
        "{err:?}"
    );
    let message = err.to_string();
    for part in [
        "2.0.1",
        "1.x",
        pinned_version(),
        "/api/*",
        "DRAFTSMITH_OPENCODE_BIN",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    let zero = fake_opencode(scratch.path(), "opencode-0", "v0.9.0", 0);
    assert!(matches!(
        resolve_binary(Some(&zero)),
        Err(BinaryError::Unsupported { .. })
    ));
    // The same major line is accepted, whatever its minor and patch.
    let same = fake_opencode(scratch.path(), "opencode-1", "1.99.0", 0);
    assert_eq!(resolve_binary(Some(&same)), Ok(same.clone()));
    assert_eq!(check_version(&same), Ok("1.99.0".into()));
}

#[test]
fn a_binary_that_does_not_tell_its_version_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let silent = fake_opencode(scratch.path(), "silent", "hello", 0);
    let failing = fake_opencode(scratch.path(), "failing", "1.18.33", 3);
    for binary in [silent, failing] {
        let err = resolve_binary(Some(&binary)).unwrap_err();
        assert!(matches!(err, BinaryError::Unknown { .. }), "{err:?}");
        assert!(
            err.to_string().contains("did not report its version"),
            "{err}"
        );
    }
}

#[test]
fn the_pinned_install_passes_and_its_package_tells_the_truth() {
    let pinned = opencode_binary();
    assert_eq!(check_version(&pinned), Ok(pinned_version().to_owned()));
    // The check read the npm package; the binary itself prints the same version.
    assert_eq!(binary_version(&pinned), Ok(pinned_version().to_owned()));
}

#[tokio::test]
async fn a_run_on_an_unsupported_binary_fails_at_once() {
    let model =
        model(json!({"scenarios": [{"name": "any", "turns": [{"steps": [{"text": "no"}]}]}]}))
            .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let two = fake_opencode(scratch.path(), "opencode", "2.0.0", 0);
    let engine = OpencodeEngine::new(OpencodeConfig {
        binary: Some(two),
        ..config(scratch.path())
    });
    let clock = Instant::now();
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
    assert!(error.message.contains("version 2.0.0"), "{}", error.message);
    assert!(
        clock.elapsed() < Duration::from_secs(10),
        "not at a timeout"
    );
    assert!(model.requests().is_empty(), "no model call was made");
}
