//! The first phase: `run.started`, the chat's sandbox created or reused and refreshed from
//! the draft with the agent contract seeded (`sandbox.ready`) while the engine starts in it
//! and the bounded chat history is read, and the engine's first turn on its job: meanwhile
//! for an engine that works ahead of its workspace, after it for one that does not.

use std::sync::Arc;
use std::time::Instant;

use draftsmith_core::EventBody;
use draftsmith_core::api::{ChatMessage, ChatRole, MessageAttachment};
use draftsmith_engine::history::{
    CHAT_SUMMARY_INSTRUCTIONS, EarlierMessage, HistoryPlan, HistoryTurn, StoredSummary,
    history_budget, plan_history,
};
use draftsmith_engine::model::Speaker;
use draftsmith_engine::{EventSink as _, Finished, Job};
use draftsmith_store::{Manifest, StoreError};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::error::{Ending, ProvisionError, RunError};
use super::execution::Execution;
use super::timings::RunTimings;
use crate::sandbox::{Readiness, SandboxTools, StoreBlobs};
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
}

/// Files attached to the prompt that go into the workspace: each draft path and its bytes.
type Seeds = Vec<(String, Vec<u8>)>;

impl Execution {
    /// Prepares the run and runs the engine's first turn. `run.started` is written while the
    /// sandbox is made and filled and the chat's history read: none of them waits for
    /// another. An engine that works ahead of its workspace
    /// ([`draftsmith_engine::Engine::works_ahead_of_workspace`]) starts on the history alone:
    /// its tools wait for the sandbox, and what it emits is held until `sandbox.ready` is
    /// written; a sandbox that cannot be made stops it. Others start once it is ready.
    pub(super) async fn start(
        &self,
        sink: &RunSink,
        timings: &mut RunTimings,
    ) -> Result<(Prepared, Finished), Ending> {
        let engine = self.engine()?;
        let ahead = engine.works_ahead_of_workspace();
        let (ready_tx, ready) = watch::channel(None);
        let (seeds_tx, seeds) = oneshot::channel();
        // The engine's own cancel: the run's, and a run that could not start.
        let cancel = self.stop.cancel.child_token();
        let started = EventBody::RunStarted {
            sandbox_id: self.sandbox.to_string(),
        };
        sink.hold();
        let clock = Instant::now();
        let recorded = async {
            let recorded = sink.record(started, Vec::new()).await;
            if recorded.is_err() {
                cancel.cancel();
            }
            recorded
        };
        let sandbox = async {
            let made = self.make_sandbox(seeds).await;
            let ms = clock.elapsed().as_millis() as u64;
            // What the engine emitted meanwhile goes out: after `sandbox.ready`, or before
            // the run's ending when the sandbox could not be made. A run that ended
            // meanwhile refuses it.
            let ready = made.as_ref().ok().map(|made| EventBody::SandboxReady {
                sandbox_id: self.sandbox.to_string(),
                reused: made.reused,
                ms,
            });
            let released = sink.release(ready);
            ready_tx.send_replace(Some(made.is_ok() && released.is_ok()));
            let ending = match (made, released) {
                (Ok(made), Ok(())) => return Ok((made, ms)),
                (Err(error), _) => RunError::from(error).into(),
                (Ok(_), Err(_)) => self.cancelled(),
            };
            cancel.cancel();
            Err(ending)
        };
        let work = async {
            let job = self.job(sink, ready, seeds_tx).await?;
            let finished = if ahead {
                Some(engine.run(job.clone(), sink, cancel.clone()).await)
            } else {
                None
            };
            Ok::<_, RunError>((job, finished))
        };
        let (recorded, made, work) = tokio::join!(recorded, sandbox, work);
        // A run that ended meanwhile (its `run.started` refused) stops here.
        if recorded.is_err() {
            return Err(self.cancelled());
        }
        let (provisioned, ms) = made?;
        timings.sandbox_start = Some(ms);
        let (job, finished) = work?;
        let finished = match finished {
            Some(finished) => finished,
            None => engine.run(job.clone(), sink, cancel).await,
        };
        timings.add_engine_start(finished.ready_ms);
        let prepared = Prepared {
            manifest: provisioned.manifest,
            job,
        };
        Ok((prepared, finished))
    }

    /// The sandbox made, filled, and given the prompt's attachments that go into it
    /// (`seeds`, sent once they are loaded).
    async fn make_sandbox(
        &self,
        seeds: oneshot::Receiver<Seeds>,
    ) -> Result<Provisioned, ProvisionError> {
        let provisioned = self.provision().await?;
        // None when the job could not be made: the run fails with its error.
        for (path, bytes) in seeds.await.unwrap_or_default() {
            self.services
                .controller
                .seed_file(&self.sandbox, &path, &bytes)
                .await
                .map_err(|error| ProvisionError::Attachment { path, error })?;
        }
        Ok(provisioned)
    }

    /// The engine's job: the chat's history and the prompt's attachments, read while the
    /// sandbox is made; the attachments that go into the workspace are sent to `seeds`.
    async fn job(
        &self,
        sink: &RunSink,
        ready: Readiness,
        seeds: oneshot::Sender<Seeds>,
    ) -> Result<Job, RunError> {
        let (history, recorded) = self.history(sink).await.map_err(RunError::History)?;
        let (attachments, into) = self.attachments(&recorded).await?;
        let _ = seeds.send(into);
        let controller = &self.services.controller;
        Ok(Job {
            prompt: self.task.run.input.clone(),
            history,
            workspace: controller.workspace_dir(&self.sandbox).unwrap_or_default(),
            template: self.task.app.template.clone(),
            model: self.task.model.clone(),
            max_steps: self.config.max_steps,
            max_compactions: self.config.max_compactions,
            tools: Arc::new(SandboxTools {
                controller: controller.clone(),
                id: self.sandbox.clone(),
                ready,
            }),
            contract: self.task.contract.clone(),
            attachments,
            steering: self.steering.clone(),
        })
    }

    /// The files attached to this run's prompt (`recorded` on its message), in order, and
    /// those asked to go into the workspace (so the agent sees them and the run's landing
    /// puts them in the draft).
    async fn attachments(
        &self,
        recorded: &[MessageAttachment],
    ) -> Result<(Vec<draftsmith_engine::Attachment>, Seeds), RunError> {
        let store = self.services.store.as_ref();
        if recorded.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let loaded = crate::attachments::load(store, recorded)
            .await
            .map_err(RunError::History)?;
        let mut attachments = Vec::with_capacity(loaded.len());
        let mut seeds = Vec::new();
        for (attachment, into) in loaded {
            if let Some(path) = into {
                seeds.push((path, attachment.bytes.clone()));
            }
            attachments.push(attachment);
        }
        Ok((attachments, seeds))
    }

    /// Creates or reuses the chat's sandbox, then fills it from the current draft with the
    /// agent contract seeded where both engines' contract tools read it, while the run's
    /// engine starts what it needs in it (OpenCode's server starts during the fill).
    async fn provision(&self) -> Result<Provisioned, ProvisionError> {
        let controller = &self.services.controller;
        // The draft is read while the sandbox is made, unless the run's base is known.
        let run = &self.task.run;
        let (created, manifest) = tokio::join!(
            controller.create(
                &self.sandbox,
                &self.task.app.template,
                self.config.sandbox_ttl,
            ),
            self.services
                .store
                .draft_as_of(run.app_id, run.base_revision)
        );
        let (created, manifest) = (created?, manifest?);
        let root = controller.workspace_dir(&self.sandbox).unwrap_or_default();
        let ahead = async {
            if let Ok(engine) = self.engine() {
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
    /// The chat's messages and its summary are read once, together: the earlier messages
    /// make the history, and the attachments of this run's own prompt are returned. A chat
    /// the run's creation started has nothing before its prompt: nothing is read.
    async fn history(
        &self,
        sink: &RunSink,
    ) -> Result<(Vec<HistoryTurn>, Vec<MessageAttachment>), StoreError> {
        if let Some(attachments) = &self.task.opening {
            return Ok((Vec::new(), attachments.clone()));
        }
        let run = &self.task.run;
        let store = &self.services.store;
        let (messages, stored) = tokio::join!(
            store.chat_messages(run.chat_session_id),
            store.chat_summary(run.chat_session_id)
        );
        let (own, earlier): (Vec<ChatMessage>, Vec<ChatMessage>) = messages?
            .into_iter()
            .partition(|m| m.run_id == Some(run.run_id));
        let attached = own
            .into_iter()
            .find(|m| m.role == ChatRole::User)
            .map(|m| m.attachments)
            .unwrap_or_default();
        let stored = stored?.map(|s| StoredSummary {
            through_message_id: s.through_message_id,
            text: s.summary,
        });
        Ok((self.turns(sink, earlier, stored).await?, attached))
    }

    /// The history made of `earlier` messages and the session's `stored` summary.
    async fn turns(
        &self,
        sink: &RunSink,
        earlier: Vec<ChatMessage>,
        stored: Option<StoredSummary>,
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
