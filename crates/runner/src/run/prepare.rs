//! The first phase: `run.started`, the chat's sandbox created or reused and refreshed from
//! the draft with the agent contract seeded (`sandbox.ready`) while the engine starts in it
//! and the bounded chat history is read, and the engine's job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use draftsmith_core::EventBody;
use draftsmith_core::api::{ChatMessage, ChatRole};
use draftsmith_engine::history::{
    CHAT_SUMMARY_INSTRUCTIONS, EarlierMessage, HistoryPlan, HistoryTurn, StoredSummary,
    history_budget, plan_history,
};
use draftsmith_engine::model::Speaker;
use draftsmith_engine::{EventSink as _, Job};
use draftsmith_store::{Manifest, StoreError};
use tokio_util::sync::CancellationToken;

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
        let clock = Instant::now();
        // `run.started` is written while the sandbox is filled and the chat's history read:
        // none of them waits for another. A run that ended meanwhile (its `run.started`
        // refused) stops here, before the engine.
        let (started, (provisioned, history)) =
            tokio::join!(sink.record(started, Vec::new()), async {
                tokio::join!(self.provision(), self.history(sink))
            });
        if started.is_err() {
            return Err(self.cancelled());
        }
        let provisioned = provisioned.map_err(RunError::from)?;
        let ms = clock.elapsed().as_millis() as u64;
        timings.sandbox_start = Some(ms);
        let ready = EventBody::SandboxReady {
            sandbox_id,
            reused: provisioned.reused,
            ms,
        };
        // Queued, not awaited: it goes out with the engine's first events, and a run that
        // ends meanwhile refuses the engine's next event.
        if sink.emit(ready, Vec::new()).await.is_err() {
            return Err(self.cancelled());
        }
        let (history, prompt) = history.map_err(RunError::History)?;
        let attachments = self.attachments(prompt).await?;
        let mut job = self.job(history, provisioned.root);
        job.attachments = attachments;
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
            attachments: Vec::new(),
            steering: self.steering.clone(),
        }
    }

    /// The files attached to this run's prompt, each asked-for one written into the
    /// workspace first (so the agent sees it and the run's landing puts it in the draft).
    async fn attachments(
        &self,
        prompt: Option<ChatMessage>,
    ) -> Result<Vec<draftsmith_engine::Attachment>, RunError> {
        let store = self.services.store.as_ref();
        let Some(prompt) = prompt else {
            return Ok(Vec::new());
        };
        let loaded = crate::attachments::load(store, &prompt.attachments)
            .await
            .map_err(RunError::History)?;
        let mut attachments = Vec::with_capacity(loaded.len());
        for (attachment, into) in loaded {
            if let Some(path) = into {
                self.services
                    .controller
                    .seed_file(&self.sandbox, &path, &attachment.bytes)
                    .await
                    .map_err(|error| ProvisionError::Attachment { path, error })?;
            }
            attachments.push(attachment);
        }
        Ok(attachments)
    }

    /// Creates or reuses the chat's sandbox, then fills it from the current draft with the
    /// agent contract seeded where both engines' contract tools read it, while the run's
    /// engine starts what it needs in it (OpenCode's server starts during the fill).
    async fn provision(&self) -> Result<Provisioned, ProvisionError> {
        let controller = &self.services.controller;
        // The draft is read while the sandbox is made.
        let (created, manifest) = tokio::join!(
            controller.create(
                &self.sandbox,
                &self.task.app.template,
                self.config.sandbox_ttl,
            ),
            self.services.store.draft(self.task.app.id)
        );
        let (created, manifest) = (created?, manifest?);
        let root = controller.workspace_dir(&self.sandbox).unwrap_or_default();
        let ahead = async {
            if let Some(engine) = self.services.engines.get(self.task.run.engine) {
                tokio::select! {
                    () = engine.prepare(&root, &self.task.model) => {}
                    () = self.stop.cancel.cancelled() => {}
                }
            }
        };
        let (filled, ()) = tokio::join!(self.fill(&manifest), ahead);
        filled?;
        Ok(Provisioned {
            manifest,
            reused: created.reused,
            root,
        })
    }

    /// The sandbox's workspace made `manifest` (the current draft), and the contract seeded
    /// meanwhile: it lives under `.cache/`, which drafts never hold and a refresh never
    /// touches.
    async fn fill(&self, manifest: &Manifest) -> Result<(), ProvisionError> {
        let controller = &self.services.controller;
        let blobs = StoreBlobs(self.services.store.clone());
        // Through the controller, so a remote sandbox gets it too; never through a symlink
        // the agent planted in the workspace.
        let contract = crate::contract::file_content(&self.task.contract);
        let (refreshed, seeded) = tokio::join!(
            controller.refresh(&self.sandbox, &manifest.files, &blobs),
            controller.seed_file(&self.sandbox, draftsmith_tools::CONTRACT_FILE, &contract)
        );
        refreshed?;
        seeded.map_err(ProvisionError::Contract)
    }

    /// Earlier turns of this run's chat session, without this run's own prompt.
    /// The chat's earlier turns: whole recent turns after the persisted summary of the older
    /// ones; the summary is written (once) when they no longer fit the history budget. A
    /// summary the model fails to write leaves a note instead; the run goes on.
    /// The summary's model call counts in the run's usage like any other.
    /// The chat's messages are read once: the earlier ones make the history, and this
    /// run's own prompt is returned for its attachments.
    async fn history(
        &self,
        sink: &RunSink,
    ) -> Result<(Vec<HistoryTurn>, Option<ChatMessage>), StoreError> {
        let run = &self.task.run;
        let (own, earlier): (Vec<ChatMessage>, Vec<ChatMessage>) = self
            .services
            .store
            .chat_messages(run.chat_session_id)
            .await?
            .into_iter()
            .partition(|m| m.run_id == Some(run.run_id));
        let prompt = own.into_iter().find(|m| m.role == ChatRole::User);
        Ok((self.turns(sink, earlier).await?, prompt))
    }

    /// The history made of `earlier` messages and the session's stored summary.
    async fn turns(
        &self,
        sink: &RunSink,
        earlier: Vec<ChatMessage>,
    ) -> Result<Vec<HistoryTurn>, StoreError> {
        let run = &self.task.run;
        let store = &self.services.store;
        let session = run.chat_session_id;
        let earlier: Vec<EarlierMessage> = earlier
            .into_iter()
            .map(|m| EarlierMessage {
                id: m.id,
                speaker: match m.role {
                    ChatRole::User => Speaker::User,
                    ChatRole::Assistant => Speaker::Assistant,
                },
                text: m.content,
            })
            .collect();
        let stored = store.chat_summary(session).await?.map(|s| StoredSummary {
            through_message_id: s.through_message_id,
            text: s.summary,
        });
        let model = &self.task.model;
        let budget = history_budget(model.facts.context_window);
        let task = match plan_history(&earlier, stored.as_ref(), budget) {
            HistoryPlan::Ready(turns) => return Ok(turns),
            HistoryPlan::Summarise(task) => task,
        };
        let cancel = CancellationToken::new();
        let clock = Instant::now();
        let written = draftsmith_engine::summary::summarise(
            model,
            CHAT_SUMMARY_INSTRUCTIONS,
            &task.log,
            &cancel,
        )
        .await;
        match written {
            Ok(summary) => {
                // The same conservative byte estimate as the history budget, when the
                // provider reported no usage.
                let prompt_bytes = CHAT_SUMMARY_INSTRUCTIONS.len() + task.log.len();
                let call = draftsmith_engine::ModelCall {
                    model: model.id.clone(),
                    step: 0,
                    usage: summary.usage,
                    estimate: draftsmith_core::Usage {
                        input_tokens: prompt_bytes.div_ceil(3) as u64,
                        output_tokens: summary.text.len().div_ceil(3) as u64,
                        ..Default::default()
                    },
                    reported_cost_micro_usd: None,
                    ms: clock.elapsed().as_millis() as u64,
                };
                sink.model_call(call).await;
                store
                    .save_chat_summary(session, &task.through_message_id, &summary.text)
                    .await?;
                Ok(task.with_summary(&summary.text))
            }
            Err(error) => {
                tracing::warn!(%error, run = %run.run_id, "chat summary not written; older turns left out");
                Ok(task.without_summary())
            }
        }
    }
}
