//! The first phase: `run.started`, the chat's sandbox created or reused and refreshed from
//! the draft with the agent contract seeded (`sandbox.ready`), the bounded chat history,
//! and the engine's job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use draftsmith_core::EventBody;
use draftsmith_core::api::ChatRole;
use draftsmith_engine::Job;
use draftsmith_engine::history::bounded_history;
use draftsmith_engine::history::{DEFAULT_MAX_CHARS, DEFAULT_MAX_TURNS, HistoryTurn};
use draftsmith_engine::model::Speaker;
use draftsmith_store::{Manifest, StoreError};

use super::error::{Ending, ProvisionError, RunError};
use super::execution::Execution;
use super::timings::RunTimings;
use crate::sandbox::{SandboxTools, StoreBlobs};
use crate::sink::RunSink;

/// A sandbox ready for the engine: the manifest it holds and the job to run in it.
pub(super) struct Prepared {
    pub manifest: Manifest,
    pub job: Job,
}

/// What provisioning found.
struct Provisioned {
    manifest: Manifest,
    reused: bool,
    root: PathBuf,
}

impl Execution {
    pub(super) async fn prepare(
        &self,
        sink: &RunSink,
        timings: &mut RunTimings,
    ) -> Result<Prepared, Ending> {
        let sandbox_id = self.sandbox.to_string();
        let started = EventBody::RunStarted {
            sandbox_id: sandbox_id.clone(),
        };
        if sink.record(started, Vec::new()).await.is_err() {
            return Err(self.cancelled());
        }
        let clock = Instant::now();
        let provisioned = self.provision().await.map_err(RunError::from)?;
        let ms = clock.elapsed().as_millis() as u64;
        timings.sandbox_start = Some(ms);
        let ready = EventBody::SandboxReady {
            sandbox_id,
            reused: provisioned.reused,
            ms,
        };
        if sink.record(ready, Vec::new()).await.is_err() {
            return Err(self.cancelled());
        }
        let history = self.history().await.map_err(RunError::History)?;
        let job = self.job(history, provisioned.root);
        Ok(Prepared {
            manifest: provisioned.manifest,
            job,
        })
    }

    fn job(&self, history: Vec<HistoryTurn>, workspace: PathBuf) -> Job {
        Job {
            prompt: self.task.run.input.clone(),
            history,
            workspace,
            template: self.task.app.template.clone(),
            model: self.task.model.clone(),
            max_steps: self.config.max_steps,
            max_compactions: self.config.max_compactions,
            tools: Arc::new(SandboxTools {
                controller: self.services.controller.clone(),
                id: self.sandbox.clone(),
            }),
            contract: self.task.contract.clone(),
        }
    }

    /// Creates or reuses the chat's sandbox, refreshes it from the current draft, and seeds
    /// the agent contract where both engines' contract tools read it.
    async fn provision(&self) -> Result<Provisioned, ProvisionError> {
        let controller = &self.services.controller;
        let created = controller
            .create(
                &self.sandbox,
                &self.task.app.template,
                self.config.sandbox_ttl,
            )
            .await?;
        let manifest = self.services.store.draft(self.task.app.id).await?;
        let blobs = StoreBlobs(self.services.store.clone());
        controller
            .refresh(&self.sandbox, &manifest.files, &blobs)
            .await?;
        let root = controller.workspace_dir(&self.sandbox).unwrap_or_default();
        // Through the controller, so a remote sandbox gets it too; never through a symlink
        // the agent planted in the workspace.
        let contract = serde_json::to_value(&self.task.contract)
            .unwrap_or_default()
            .to_string();
        controller
            .seed_file(
                &self.sandbox,
                draftsmith_tools::CONTRACT_FILE,
                contract.as_bytes(),
            )
            .await
            .map_err(ProvisionError::Contract)?;
        Ok(Provisioned {
            manifest,
            reused: created.reused,
            root,
        })
    }

    /// Earlier turns of this run's chat session, without this run's own prompt.
    async fn history(&self) -> Result<Vec<HistoryTurn>, StoreError> {
        let run = &self.task.run;
        let messages = self
            .services
            .store
            .chat_messages(run.chat_session_id)
            .await?;
        let earlier: Vec<(Speaker, String)> = messages
            .into_iter()
            .filter(|m| m.run_id != Some(run.run_id))
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
}
