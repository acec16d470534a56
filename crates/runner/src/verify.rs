//! Verification: the template's commands (e.g. `npm run build`) run in the workspace after
//! the agent's last edit, each reported as `verification.*` events. Dependencies declared by
//! a lockfile are installed first when the workspace has none.

use std::path::Path;
use std::time::Duration;

use draftsmith_core::EventBody;
use draftsmith_core::event::VerificationResult;
use draftsmith_tools::{CommandRequest, CommandRunner};
use tokio_util::sync::CancellationToken;

use crate::sink::RunSink;

/// Longest a verification command may run.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Output kept per command (its tail).
const OUTPUT_BYTES: usize = 8 * 1024;

/// How verification ended.
pub enum Verdict {
    /// Every command passed.
    Passed,
    /// A command failed; its result is what the agent gets to repair.
    Failed(VerificationResult),
    /// The run was cancelled or its log closed.
    Stopped,
}

/// Runs `commands` in `root` through `runner`, reporting each.
pub async fn verify(
    sink: &RunSink,
    runner: &dyn CommandRunner,
    root: &Path,
    commands: &[&str],
    cancel: &CancellationToken,
) -> Verdict {
    let mut steps: Vec<String> = Vec::new();
    if root.join("package-lock.json").exists() && !root.join("node_modules").exists() {
        steps.push("npm ci --no-audit --no-fund --prefer-offline".into());
    }
    steps.extend(commands.iter().map(|c| (*c).to_owned()));
    for command in steps {
        if sink
            .record(
                EventBody::VerificationStarted {
                    command: command.clone(),
                },
                Vec::new(),
            )
            .await
            .is_err()
        {
            return Verdict::Stopped;
        }
        let request = CommandRequest {
            command: command.clone(),
            cwd: root.to_path_buf(),
            timeout: TIMEOUT,
            max_output_bytes: OUTPUT_BYTES,
            env: vec![("CI".into(), "1".into())],
        };
        let output = runner.run(request, cancel.clone()).await;
        if cancel.is_cancelled() {
            return Verdict::Stopped;
        }
        let (result, passed) = match output {
            Ok(out) => {
                let passed = out.exit_code == Some(0) && !out.timed_out;
                (
                    VerificationResult {
                        command: command.clone(),
                        exit_code: out.exit_code,
                        output: out.output,
                        ms: out.ms,
                    },
                    passed,
                )
            }
            Err(err) => (
                VerificationResult {
                    command: command.clone(),
                    exit_code: None,
                    output: err.to_string(),
                    ms: 0,
                },
                false,
            ),
        };
        let event = if passed {
            EventBody::VerificationCompleted(result.clone())
        } else {
            EventBody::VerificationFailed(result.clone())
        };
        if sink.record(event, Vec::new()).await.is_err() {
            return Verdict::Stopped;
        }
        if !passed {
            return Verdict::Failed(result);
        }
    }
    Verdict::Passed
}

/// The prompt that hands a failed verification back to the agent.
pub fn repair_prompt(result: &VerificationResult) -> String {
    format!(
        "Verification failed: `{}` exited with {}. Its output ends with:\n```\n{}\n```\nFix the problem so \
         the command succeeds, then say briefly what you changed.",
        result.command,
        result
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "no exit code".into()),
        result.output.trim_end()
    )
}
