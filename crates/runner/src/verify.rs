//! Verification: the template's commands (e.g. `npm run build`) run in the workspace after
//! the agent's last edit, each reported as `verification.*` events. Dependencies declared by
//! a lockfile are linked from the shared cache first.

use std::time::Duration;

use draftsmith_core::EventBody;
use draftsmith_core::event::VerificationResult;
use draftsmith_sandbox::{SandboxController, SandboxId};
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

/// The step that links the template's shared dependencies into the sandbox.
pub struct Dependencies<'a> {
    /// The controller.
    pub controller: &'a dyn SandboxController,
    /// The sandbox.
    pub id: &'a SandboxId,
}

/// The name the dependency step has in `verification.*` events.
pub const DEPENDENCY_STEP: &str = "install dependencies (shared cache)";

/// Links dependencies when asked, then runs `commands` through `runner`, reporting each.
pub async fn verify(
    sink: &RunSink,
    runner: &dyn CommandRunner,
    dependencies: Option<Dependencies<'_>>,
    commands: &[&str],
    cancel: &CancellationToken,
) -> Verdict {
    if let Some(deps) = dependencies {
        let command = DEPENDENCY_STEP.to_owned();
        if started(sink, &command).await.is_err() {
            return Verdict::Stopped;
        }
        let clock = std::time::Instant::now();
        let prepared = deps.controller.prepare_dependencies(deps.id).await;
        let (exit_code, output) = match prepared {
            Ok(_) => (Some(0), String::new()),
            Err(err) => (None, err.to_string()),
        };
        let result = VerificationResult {
            command,
            exit_code,
            output,
            ms: clock.elapsed().as_millis() as u64,
        };
        let passed = exit_code.is_some();
        if let Some(verdict) = ended(sink, result, passed).await {
            return verdict;
        }
    }
    for command in commands.iter().map(|c| (*c).to_owned()) {
        if started(sink, &command).await.is_err() {
            return Verdict::Stopped;
        }
        let request = CommandRequest {
            command: command.clone(),
            // The sandbox runs commands in its workspace, whatever this says.
            cwd: std::path::PathBuf::new(),
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
                let result = VerificationResult {
                    command,
                    exit_code: out.exit_code,
                    output: out.output,
                    ms: out.ms,
                };
                (result, passed)
            }
            Err(err) => {
                let result = VerificationResult {
                    command,
                    exit_code: None,
                    output: err.to_string(),
                    ms: 0,
                };
                (result, false)
            }
        };
        if let Some(verdict) = ended(sink, result, passed).await {
            return verdict;
        }
    }
    Verdict::Passed
}

/// Records that `command` began.
async fn started(sink: &RunSink, command: &str) -> Result<(), ()> {
    let event = EventBody::VerificationStarted {
        command: command.to_owned(),
    };
    sink.record(event, Vec::new()).await.map(drop).map_err(drop)
}

/// Records how a step ended; the verdict when verification stops here (the run is gone,
/// or the step failed).
async fn ended(sink: &RunSink, result: VerificationResult, passed: bool) -> Option<Verdict> {
    let event = if passed {
        EventBody::VerificationCompleted(result.clone())
    } else {
        EventBody::VerificationFailed(result.clone())
    };
    if sink.record(event, Vec::new()).await.is_err() {
        return Some(Verdict::Stopped);
    }
    (!passed).then_some(Verdict::Failed(result))
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
