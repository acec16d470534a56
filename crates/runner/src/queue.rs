//! The app's prompt queue as the runner drives it: prompts validated as a run's would be,
//! queued in the store, and started by this instance whenever it sees the app idle (a run
//! of its own ended, a prompt was queued, a hold lifted, or its maintenance tick found a
//! waiting queue after another instance's run or an orphan ended). The store's claim makes
//! sure only one instance starts each prompt.

use std::time::Instant;

use draftsmith_core::api::{App, CreateRun, QueueState, QueuedPrompt, Run};
use draftsmith_core::{AppId, ErrorCode, EventBody, EventError, QueueItemId, UserId};
use draftsmith_store::{NewQueued, NextRun, QueueTarget, StoreError};
use tokio::sync::oneshot;

use crate::{CreateRunError, Runner, Throttled, contract};

/// What `POST runs` with `when_busy: "queue"` did.
#[derive(Debug)]
pub enum Submitted {
    /// The app was idle with nothing queued: a run started (with the API timing's sender).
    Started(Box<Run>, oneshot::Sender<u64>),
    /// The prompt waits in the queue.
    Queued(QueuedPrompt),
}

impl Runner {
    /// Starts the prompt when the app is idle and its queue empty, else queues it (FIFO:
    /// a prompt never overtakes the queue). An instance with every sandbox busy queues it
    /// too, to start when one frees, rather than answer 503.
    pub async fn submit(
        &self,
        app: &App,
        user: &UserId,
        request: CreateRun,
    ) -> Result<Submitted, CreateRunError> {
        let store = &self.inner.services.store;
        if store.queue(app.id, false).await?.items.is_empty() {
            match self.create(app, user, request.clone()).await {
                Ok((run, api)) => return Ok(Submitted::Started(Box::new(run), api)),
                Err(CreateRunError::Store(StoreError::RunActive { .. }))
                | Err(CreateRunError::Throttled(Throttled::InstanceFull { .. })) => {}
                Err(other) => return Err(other),
            }
        }
        self.enqueue(app, user, request)
            .await
            .map(Submitted::Queued)
    }

    /// Validates a prompt as a run's (engine, model, chat session) and queues it.
    pub async fn enqueue(
        &self,
        app: &App,
        user: &UserId,
        request: CreateRun,
    ) -> Result<QueuedPrompt, CreateRunError> {
        if !request.attachments.is_empty() {
            return Err(crate::attachments::AttachmentError::Invalid(
                "a prompt with attachments cannot wait in the queue; send it when the app is idle"
                    .into(),
            )
            .into());
        }
        let (engine, requested, model) = self.choose(&request)?;
        let item = self
            .inner
            .services
            .store
            .enqueue(NewQueued {
                app: app.id,
                user: user.clone(),
                chat_session: request.chat_session_id,
                engine,
                requested_model_id: requested,
                resolved_model_id: model.id.clone(),
                input: request.input,
            })
            .await?;
        self.kick(app.id);
        Ok(item)
    }

    /// The app's queue and whether a failed run holds it.
    pub async fn queue(&self, app: AppId) -> Result<QueueState, StoreError> {
        let hold = self.config().hold_queue_after_failure;
        self.inner.services.store.queue(app, hold).await
    }

    /// Removes a queued prompt.
    pub async fn remove_queued(&self, app: AppId, item: QueueItemId) -> Result<(), StoreError> {
        self.inner.services.store.remove_queued(app, item).await
    }

    /// Moves a queued prompt; the queue after the move.
    pub async fn move_queued(
        &self,
        app: AppId,
        item: QueueItemId,
        target: QueueTarget,
    ) -> Result<QueueState, StoreError> {
        self.inner
            .services
            .store
            .move_queued(app, item, target)
            .await?;
        self.queue(app).await
    }

    /// Lifts a hold after a failed run and lets the queue go on.
    pub async fn resume_queue(&self, app: AppId) -> Result<QueueState, StoreError> {
        self.inner.services.store.resume_queue(app).await?;
        self.kick(app);
        self.queue(app).await
    }

    /// Asks the maintenance loop to start the app's next prompt if it can.
    pub(crate) fn kick(&self, app: AppId) {
        let _ = self.inner.kicks.send(app);
    }

    /// [`Self::start_queued`], its failure logged (the next tick tries again).
    pub(crate) async fn start_queued_logged(&self, app: AppId) {
        if let Err(err) = self.start_queued(app).await {
            tracing::warn!(app = %app, error = %err, "could not start the next queued prompt");
        }
    }

    /// Starts the head of the app's queue unless a run is active or the queue is held. A
    /// prompt whose pinned model is no longer available becomes a run that fails at once
    /// (`CODING_AGENT_MODEL_UNAVAILABLE`), and the next one is tried.
    async fn start_queued(&self, app_id: AppId) -> Result<(), StoreError> {
        let store = self.inner.services.store.clone();
        loop {
            if self.instance_full() {
                // The maintenance tick tries again once a sandbox is free.
                return Ok(());
            }
            // Most runs end with nothing queued: that is seen in one read, without the
            // app row's lock that starting the head takes.
            if store.queue(app_id, false).await?.items.is_empty() {
                return Ok(());
            }
            let clock = Instant::now();
            let app = store.app(app_id).await?;
            let contract = contract::load(store.as_ref(), &app).await?;
            // A queued prompt runs under the configured default budget.
            let budget = self.config().budgets.defaults();
            let next = NextRun {
                app: app_id,
                owner: self.config().instance,
                lease_until: self.lease_deadline(),
                input_params: contract::input_params(&contract, &budget),
                hold_after_failure: self.config().hold_queue_after_failure,
            };
            let Some(run) = store.start_next_queued(next).await? else {
                return Ok(());
            };
            tracing::info!(app = %app_id, run = %run.run_id, "started the next queued prompt");
            match self.registry().resolve(Some(&run.resolved_model_id)) {
                Ok(model) => {
                    // Its chat's history is read: the queue does not say whether its
                    // prompt started the chat.
                    let task = crate::run::Assignment {
                        run,
                        app,
                        model,
                        contract,
                        budget,
                        clock: self.clock(),
                        opening: None,
                    };
                    let api = self.launch(task, clock);
                    let _ = api.send(0);
                    return Ok(());
                }
                Err(why) => self.fail_unstartable(&run, why.0).await?,
            }
        }
    }

    /// Ends a queued run that cannot start because its model went away.
    async fn fail_unstartable(&self, run: &Run, why: String) -> Result<(), StoreError> {
        let body = EventBody::RunFailed {
            error: EventError {
                code: ErrorCode::CodingAgentModelUnavailable,
                message: why,
                field: Some("model_id".into()),
                details: None,
            },
            usage: None,
        };
        let services = &self.inner.services;
        let event = services
            .store
            .append_event(run.run_id, body, Vec::new())
            .await?;
        services.bus.publish(&event).await;
        Ok(())
    }
}
