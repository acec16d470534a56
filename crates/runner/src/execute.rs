//! One run from `run.started` to its terminal event: workspace, engine, sync, the
//! assistant's message, timings.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use draftsmith_core::api::{App, ChatRole, CheckpointKind, MessageStatus, Run};
use draftsmith_core::{EngineKind, ErrorCode, EventBody, EventError};
use draftsmith_engine::history::HistoryTurn;
use draftsmith_engine::history::{DEFAULT_MAX_CHARS, DEFAULT_MAX_TURNS, bounded_history};
use draftsmith_engine::model::Speaker;
use draftsmith_engine::{Engine, Job, NativeEngine, Outcome, ResolvedModel};
use draftsmith_sandbox::SandboxId;
use draftsmith_store::Store;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::RunnerConfig;
use crate::bus::EventBus;
use crate::sandbox::{SandboxCommands, SandboxTools, StoreBlobs, entries};
use crate::sink::RunSink;
use crate::verify::{Verdict, repair_prompt, verify};

/// Everything one run's task owns.
pub(crate) struct Execution {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub controller: Arc<dyn draftsmith_sandbox::SandboxController>,
    pub opencode: Option<draftsmith_opencode::OpencodeEngine>,
    pub run: Run,
    pub app: App,
    pub model: ResolvedModel,
    pub engine: EngineKind,
    pub config: RunnerConfig,
    pub cancel: CancellationToken,
    pub cancelled_by: Arc<Mutex<Option<String>>>,
    pub create_ms: u64,
    pub api_ms: oneshot::Receiver<u64>,
    pub started: Instant,
}

/// The terminal event and the assistant message status it implies; a run that ends with
/// work to sync carries it, to land with the terminal event in one transaction.
pub(crate) struct Ending {
    pub body: EventBody,
    pub message: MessageStatus,
    pub land: Option<crate::land::Pending>,
}

impl Execution {
    pub(crate) async fn execute(mut self) {
        let sink = RunSink::new(
            self.store.clone(),
            self.bus.clone(),
            self.run.run_id,
            self.started,
        );
        let mut timing = Map::new();
        timing.insert("create_run".into(), self.create_ms.into());
        let (mut ending, transcript) = self.work(&sink, &mut timing).await;
        if let Some(pending) = ending.land.take() {
            // Kept warm first: once the landing commits, the run has ended.
            self.release_sandbox(&ending).await;
            self.close_timing(&sink, &mut timing);
            let status = ending.body.event_type();
            match self
                .land(&sink, pending, ending, &transcript, &timing)
                .await
            {
                Ok(()) => return self.log_timing(status, timing),
                Err(failed) => ending = failed,
            }
        }
        self.release_sandbox(&ending).await;
        self.close_timing(&sink, &mut timing);
        self.finish(&sink, ending, transcript, timing).await;
    }

    /// Adds the API's own timing, the first token and the total to the run's timings.
    fn close_timing(&mut self, sink: &RunSink, timing: &mut Map<String, Value>) {
        if let Ok(api) = self.api_ms.try_recv() {
            timing.insert("create_run_api".into(), api.into());
        }
        if let Some(first) = sink.first_token_ms() {
            timing.insert("first_token".into(), first.into());
        }
        timing.insert(
            "total".into(),
            (self.started.elapsed().as_millis() as u64).into(),
        );
    }

    /// SPEC §6: a failed run stops its sandbox, the OpenCode server in it included, before
    /// the terminal event is sent; any other ending keeps it warm for another TTL.
    async fn release_sandbox(&self, ending: &Ending) {
        let Ok(id) = SandboxId::for_chat(&self.run.chat_session_id.to_string()) else {
            return;
        };
        if matches!(ending.body, EventBody::RunFailed { .. }) {
            if let (Some(engine), Some(workspace)) =
                (&self.opencode, self.controller.workspace_dir(&id))
            {
                engine.stop_server(&workspace).await;
            }
            if let Err(err) = self.controller.stop(&id).await {
                tracing::warn!(sandbox = %id, error = %err, "could not stop a failed run's sandbox");
            }
        } else if let Err(err) = self.controller.touch(&id, self.config.sandbox_ttl).await {
            tracing::debug!(sandbox = %id, error = %err, "sandbox not kept warm");
        }
    }

    async fn work(&self, sink: &RunSink, timing: &mut Map<String, Value>) -> (Ending, String) {
        let sandbox_id = format!("chat-{}", self.run.chat_session_id);
        if sink
            .record(
                EventBody::RunStarted {
                    sandbox_id: sandbox_id.clone(),
                },
                Vec::new(),
            )
            .await
            .is_err()
        {
            return (self.cancelled(), String::new());
        }
        let Ok(sandbox) = SandboxId::for_chat(&self.run.chat_session_id.to_string()) else {
            return (
                failed(
                    ErrorCode::CodingAgentSandboxFailed,
                    "invalid sandbox id".into(),
                ),
                String::new(),
            );
        };
        let clock = Instant::now();
        let (manifest, reused, root) = match self.provision(&sandbox).await {
            Ok(ready) => ready,
            Err(err) => {
                return (
                    failed(ErrorCode::CodingAgentSandboxFailed, err),
                    String::new(),
                );
            }
        };
        let sandbox_ms = clock.elapsed().as_millis() as u64;
        timing.insert("sandbox_start".into(), sandbox_ms.into());
        let ready = EventBody::SandboxReady {
            sandbox_id,
            reused,
            ms: sandbox_ms,
        };
        if sink.record(ready, Vec::new()).await.is_err() {
            return (self.cancelled(), String::new());
        }

        let history = match self.history().await {
            Ok(h) => h,
            Err(err) => return (failed(ErrorCode::Internal, err.to_string()), String::new()),
        };
        let job = Job {
            prompt: self.run.input.clone(),
            history,
            workspace: root.clone(),
            template: self.app.template.clone(),
            model: self.model.clone(),
            max_steps: self.config.max_steps,
            tools: Arc::new(SandboxTools {
                controller: self.controller.clone(),
                id: sandbox.clone(),
            }),
            contract: self.run.input_params["context"]["selected_agent_contract"].clone(),
        };
        let mut finished = match self.run_engine(job.clone(), sink, timing).await {
            Ok(finished) => finished,
            Err(ending) => return (ending, String::new()),
        };
        let mut transcript = finished.transcript.clone();
        // Verify the work; a failure goes back to the agent for a bounded number of turns.
        let commands = draftsmith_templates::find(&self.app.template)
            .map(|t| t.verify)
            .unwrap_or(&[]);
        let mut repairs = 0;
        while self.config.verify
            && !commands.is_empty()
            && matches!(finished.outcome, Outcome::Completed { .. })
        {
            let runner = SandboxCommands {
                controller: self.controller.clone(),
                id: sandbox.clone(),
            };
            let deps = self.dependencies(&manifest, &sandbox);
            match verify(sink, &runner, deps, commands, &self.cancel).await {
                Verdict::Passed => break,
                Verdict::Stopped => return (self.cancelled(), transcript),
                Verdict::Failed(result) if repairs >= self.config.repair_turns => {
                    return (
                        self.rejected_by_verification(sink, &sandbox, &manifest, &result, repairs)
                            .await,
                        transcript,
                    );
                }
                Verdict::Failed(result) => {
                    repairs += 1;
                    let mut repair = job.clone();
                    repair.history.push(HistoryTurn {
                        speaker: Speaker::User,
                        text: job.prompt.clone(),
                    });
                    repair.history.push(HistoryTurn {
                        speaker: Speaker::Assistant,
                        text: transcript.clone(),
                    });
                    repair.prompt = repair_prompt(&result);
                    finished = match self.run_engine(repair, sink, timing).await {
                        Ok(finished) => finished,
                        Err(ending) => return (ending, transcript),
                    };
                    if !finished.transcript.is_empty() {
                        transcript = format!("{transcript}\n\n{}", finished.transcript);
                    }
                }
            }
        }
        let ending = match finished.outcome {
            Outcome::Completed { summary } => {
                self.to_land(
                    &sandbox,
                    manifest,
                    EventBody::RunCompleted {
                        revision: 0,
                        summary,
                    },
                    MessageStatus::Complete,
                )
                .await
            }
            Outcome::Paused { reason } => {
                self.to_land(
                    &sandbox,
                    manifest,
                    EventBody::RunPaused { reason },
                    MessageStatus::Partial,
                )
                .await
            }
            Outcome::Failed { error } => Ending {
                body: EventBody::RunFailed { error },
                message: MessageStatus::Partial,
                land: None,
            },
            Outcome::Cancelled => self.cancelled(),
        };
        (ending, transcript)
    }

    /// Verification still fails after the repair turns: the work becomes a `rejected`
    /// checkpoint and the draft stays as it was.
    async fn rejected_by_verification(
        &self,
        sink: &RunSink,
        sandbox: &SandboxId,
        manifest: &draftsmith_store::Manifest,
        result: &draftsmith_core::event::VerificationResult,
        repairs: usize,
    ) -> Ending {
        let changes = self.snapshot(sandbox, manifest).await.unwrap_or_default();
        let kept = if changes.is_empty() {
            None
        } else {
            self.reject(sink, manifest.revision, &changes, "failed verification")
                .await
        };
        let mut ending = failed(
            ErrorCode::CodingAgentVerificationFailed,
            format!("`{}` failed after {repairs} repair turn(s)", result.command),
        );
        if let EventBody::RunFailed { error } = &mut ending.body {
            error.details = Some(serde_json::json!({
                "command": result.command,
                "exit_code": result.exit_code,
                "rejected_checkpoint_id": kept,
            }));
        }
        ending
    }

    /// Runs the job on the run's engine; OpenCode reports how long its server took to start.
    async fn run_engine(
        &self,
        job: Job,
        sink: &RunSink,
        timing: &mut Map<String, Value>,
    ) -> Result<draftsmith_engine::Finished, Ending> {
        match self.engine {
            EngineKind::Native => Ok(NativeEngine.run(job, sink, self.cancel.clone()).await),
            EngineKind::Opencode => {
                let Some(engine) = &self.opencode else {
                    return Err(failed(
                        ErrorCode::CodingAgentOpencodeStartFailed,
                        "the opencode engine is not available".into(),
                    ));
                };
                if self
                    .controller
                    .workspace_dir(
                        &SandboxId::for_chat(&self.run.chat_session_id.to_string()).map_err(
                            |e| failed(ErrorCode::CodingAgentSandboxFailed, e.to_string()),
                        )?,
                    )
                    .is_none()
                {
                    return Err(failed(
                        ErrorCode::CodingAgentOpencodeStartFailed,
                        "the opencode engine needs an in-process sandbox controller".into(),
                    ));
                }
                let workspace = job.workspace.clone();
                let finished = engine.run(job, sink, self.cancel.clone()).await;
                if let Some(timings) = engine.timings(&workspace) {
                    let start = timing
                        .get("opencode_start")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    timing.insert(
                        "opencode_start".into(),
                        (start + timings.opencode_start).into(),
                    );
                }
                Ok(finished)
            }
        }
    }

    /// Creates or reuses the chat's sandbox, refreshes it from the current draft, and seeds
    /// the agent contract where both engines' contract tools read it. Returns the manifest
    /// it holds, whether it was warm, and its workspace directory (when local).
    async fn provision(
        &self,
        sandbox: &SandboxId,
    ) -> Result<(draftsmith_store::Manifest, bool, std::path::PathBuf), String> {
        let created = self
            .controller
            .create(sandbox, &self.app.template, self.config.sandbox_ttl)
            .await
            .map_err(|e| e.to_string())?;
        let manifest = self
            .store
            .draft(self.app.id)
            .await
            .map_err(|e| e.to_string())?;
        self.controller
            .refresh(
                sandbox,
                &entries(&manifest),
                &StoreBlobs(self.store.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        let root = self.controller.workspace_dir(sandbox).unwrap_or_default();
        // Through the controller, so a remote sandbox gets it too; never through a symlink
        // the agent planted in the workspace.
        let contract = self.run.input_params["context"]["selected_agent_contract"].to_string();
        self.controller
            .seed_file(
                sandbox,
                draftsmith_tools::CONTRACT_FILE,
                contract.as_bytes(),
            )
            .await
            .map_err(|e| format!("seeding the agent contract: {e}"))?;
        Ok((manifest, created.reused, root))
    }

    /// The workspace's changes against the manifest it was refreshed from.
    pub(crate) async fn snapshot(
        &self,
        sandbox: &SandboxId,
        manifest: &draftsmith_store::Manifest,
    ) -> Result<Vec<draftsmith_store::FileChange>, Ending> {
        let changes = self
            .controller
            .snapshot(sandbox, &entries(manifest))
            .await
            .map_err(sandbox_failed)?;
        Ok(changes
            .into_iter()
            .filter_map(|c| {
                let path = draftsmith_core::DraftPath::parse(&c.path).ok()?;
                Some(draftsmith_store::FileChange {
                    path,
                    content: c.content,
                })
            })
            .collect())
    }

    /// Links the template's shared dependencies into the sandbox before verification, when
    /// the app has a lockfile.
    fn dependencies<'a>(
        &'a self,
        manifest: &draftsmith_store::Manifest,
        sandbox: &'a SandboxId,
    ) -> Option<crate::verify::Dependencies<'a>> {
        manifest
            .files
            .iter()
            .any(|f| f.path == "package-lock.json")
            .then_some(crate::verify::Dependencies {
                controller: self.controller.as_ref(),
                id: sandbox,
            })
    }

    /// Earlier turns of this run's chat session, without this run's own prompt.
    async fn history(
        &self,
    ) -> Result<Vec<draftsmith_engine::history::HistoryTurn>, draftsmith_store::StoreError> {
        let messages = self.store.chat_messages(self.run.chat_session_id).await?;
        let earlier: Vec<(Speaker, String)> = messages
            .into_iter()
            .filter(|m| m.run_id != Some(self.run.run_id))
            .map(|m| {
                let speaker = match m.role {
                    ChatRole::User => Speaker::User,
                    ChatRole::Assistant => Speaker::Assistant,
                };
                (speaker, m.content)
            })
            .collect();
        Ok(bounded_history(
            &earlier,
            DEFAULT_MAX_TURNS,
            DEFAULT_MAX_CHARS,
        ))
    }

    /// Keeps work that will not reach the draft as a `rejected` checkpoint on top of
    /// `base`; returns its id.
    pub(crate) async fn reject(
        &self,
        sink: &RunSink,
        base: i64,
        changes: &[draftsmith_store::FileChange],
        label: &str,
    ) -> Option<String> {
        let blobs: Vec<(draftsmith_core::BlobHash, &[u8])> = changes
            .iter()
            .filter_map(|c| {
                c.content
                    .as_deref()
                    .map(|b| (draftsmith_core::BlobHash::of(b), b))
            })
            .collect();
        let refs: Vec<(&draftsmith_core::BlobHash, &[u8])> =
            blobs.iter().map(|(h, b)| (h, *b)).collect();
        if let Err(err) = self.store.blobs().put_many(&refs).await {
            tracing::error!(error = %err, "could not keep the rejected work");
            return None;
        }
        let detached = changes
            .iter()
            .map(|c| {
                let value = c
                    .content
                    .as_deref()
                    .map(|b| (draftsmith_core::BlobHash::of(b), b.len() as i64));
                (c.path.as_str().to_owned(), value)
            })
            .collect();
        let checkpoint = self
            .store
            .create_checkpoint(draftsmith_store::NewCheckpoint {
                app: self.app.id,
                kind: CheckpointKind::Rejected,
                revision: base,
                run: Some(self.run.run_id),
                label: label.into(),
                by: self.run.created_by.clone(),
                detached: Some(detached),
            })
            .await
            .ok()?;
        let created = EventBody::CheckpointCreated {
            checkpoint_id: checkpoint.id.clone(),
            kind: CheckpointKind::Rejected.as_str().into(),
            revision: base,
        };
        sink.record(created, Vec::new()).await.ok()?;
        Some(checkpoint.id)
    }

    pub(crate) fn cancelled(&self) -> Ending {
        let by = self.cancelled_by.lock().ok().and_then(|b| b.clone());
        match by {
            Some(by) => Ending {
                body: EventBody::RunCancelled { by },
                message: MessageStatus::Partial,
                land: None,
            },
            // Cancelled without a user: the service is shutting down.
            None => failed(
                ErrorCode::CodingAgentRunOrphaned,
                "the service stopped during the run".into(),
            ),
        }
    }

    async fn finish(
        &self,
        sink: &RunSink,
        ending: Ending,
        transcript: String,
        timing: Map<String, Value>,
    ) {
        let run = self.run.run_id;
        if !transcript.is_empty() {
            let saved = self
                .store
                .add_chat_message(
                    self.run.chat_session_id,
                    Some(run),
                    ChatRole::Assistant,
                    &transcript,
                    ending.message,
                )
                .await;
            if let Err(err) = saved {
                tracing::error!(run = %run, error = %err, "could not save the assistant message");
            }
        }
        if let Err(err) = self.store.set_run_timing(run, &timing).await {
            tracing::error!(run = %run, error = %err, "could not save run timings");
        }
        let status = ending.body.event_type();
        if let Err(err) = sink.record(ending.body, Vec::new()).await {
            tracing::warn!(run = %run, error = %err, "terminal event not recorded (the run had already ended)");
        }
        self.log_timing(status, timing);
    }

    fn log_timing(&self, status: &str, timing: Map<String, Value>) {
        let timing_json = Value::Object(timing).to_string();
        tracing::info!(
            target: "CODING_AGENT_TIMING",
            run_id = %self.run.run_id,
            app_id = %self.app.id,
            engine = self.engine.as_str(),
            model = %self.model.id,
            outcome = status,
            timing_metrics_ms = %timing_json,
            "CODING_AGENT_TIMING"
        );
    }
}

/// A sandbox error as the run's end, keeping its own code (an oversize workspace is
/// `CODING_AGENT_WORKSPACE_TOO_LARGE`, not a generic sandbox failure) and details.
fn sandbox_failed(error: draftsmith_sandbox::SandboxError) -> Ending {
    let details = error.to_body().error.details;
    let code = match error.code() {
        ErrorCode::CodingAgentWorkspaceTooLarge => ErrorCode::CodingAgentWorkspaceTooLarge,
        _ => ErrorCode::CodingAgentSandboxFailed,
    };
    let mut ending = failed(code, error.to_string());
    if let EventBody::RunFailed { error } = &mut ending.body
        && !details.is_empty()
    {
        error.details = Some(serde_json::Value::Object(details));
    }
    ending
}

pub(crate) fn failed(code: ErrorCode, message: String) -> Ending {
    Ending {
        body: EventBody::RunFailed {
            error: EventError {
                code,
                message,
                field: None,
                details: None,
            },
        },
        message: MessageStatus::Partial,
        land: None,
    }
}
