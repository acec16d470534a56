//! The run loop: whichever comes first of cancel, the retry deadline, the server dying,
//! the next event (or poll), and the synchronous prompt's answer decides the next step.

use super::*;

impl Run<'_> {
    /// Runs the loop until the run is over or `cancel` fires.
    pub(super) async fn follow(
        &mut self,
        events: &mut Option<SessionEvents>,
        sync_prompt: &mut Option<SyncPrompt>,
        limits: &RunLimits,
        max_steps: usize,
        cancel: &CancellationToken,
    ) -> Outcome {
        let mut poll = tokio::time::interval(limits.poll_interval);
        let mut liveness = tokio::time::interval(LIVENESS);
        loop {
            // Cancel interrupts a turn wherever it waits (an event, a poll, the sink).
            let turn = tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                end = self.turn(events, sync_prompt, &mut poll, &mut liveness, limits, max_steps) => Some(end),
            };
            match turn {
                None => {
                    self.abort().await;
                    return Outcome::Cancelled;
                }
                Some(Some(outcome)) => return outcome,
                Some(None) => {}
            }
        }
    }

    /// Waits for the next thing to happen and handles it; `Some` when the run is over.
    async fn turn(
        &mut self,
        events: &mut Option<SessionEvents>,
        sync_prompt: &mut Option<SyncPrompt>,
        poll: &mut tokio::time::Interval,
        liveness: &mut tokio::time::Interval,
        limits: &RunLimits,
        max_steps: usize,
    ) -> Option<Outcome> {
        if let Some(outcome) = upstream_gave_out(limits) {
            self.abort().await;
            self.stats.ended_by = "the model provider's failure".into();
            return Some(outcome);
        }
        let retry_deadline = self
            .translator
            .retry()
            .map(|r| tokio::time::Instant::from_std(r.since + limits.max_retry));
        let step = tokio::select! {
            biased;
            _ = sleep_until(retry_deadline), if retry_deadline.is_some() => {
                self.abort().await;
                Step::End(self.gave_up_retrying(limits.max_retry))
            }
            _ = liveness.tick() => self.check_alive(),
            item = next_item(events), if events.is_some() => self.on_stream(item, events).await,
            result = wait_sync(sync_prompt), if sync_prompt.is_some() => {
                *sync_prompt = None;
                match result {
                    Ok(last) => self.answered(last, events.is_some(), limits).await,
                    Err(err @ ClientError::Status { status: 400..=499, .. }) => Step::End(failed(
                        ErrorCode::CodingAgentOpencodeStartFailed,
                        format!("OpenCode did not accept the prompt: {err}"),
                    )),
                    Err(err @ ClientError::Status { .. }) => {
                        Step::End(failed(ErrorCode::CodingAgentModelError, err.to_string()))
                    }
                    // The connection broke, not the work: the events (or polls) and the
                    // server's liveness still tell how the run ends.
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the OpenCode prompt's answer");
                        self.check_alive()
                    }
                }
            }
            _ = poll.tick(), if events.is_none() || self.idle_unconfirmed => self.poll().await,
        };
        // A true session error ends the run even if no idle follows: after one last look
        // at the messages, in case an event was missed or overtaken on the way.
        let step = match step {
            Step::Continue(mut emitted) if self.translator.fatal().is_some() => {
                self.stats.ended_by = "a session error".into();
                if let Ok(messages) = self.client.messages(&self.session).await {
                    emitted.extend(self.translator.apply_snapshot(&messages));
                }
                Step::Idle(emitted)
            }
            other => other,
        };
        match step {
            Step::Continue(emitted) => {
                if self.forward(emitted).await.is_err() {
                    self.abort().await;
                    return Some(Outcome::Cancelled);
                }
            }
            Step::Idle(mut emitted) => {
                // What the session holds is all in: every answer is final.
                emitted.extend(self.translator.finish());
                if self.forward(emitted).await.is_err() {
                    return Some(Outcome::Cancelled);
                }
                return Some(self.translator.outcome(limits.fail_on_unrecovered_edit));
            }
            Step::End(outcome) => return Some(outcome),
        }
        if self.budget_spent {
            // OpenCode runs the step's tools within its own loop; the budget ends it after
            // the call that spent it.
            self.abort().await;
            self.stats.ended_by = "the run's budget".into();
            return Some(Outcome::Paused {
                reason: "budget".into(),
            });
        }
        if self.translator.steps() > max_steps {
            self.abort().await;
            self.stats.ended_by = "the step limit".into();
            return Some(Outcome::Paused {
                reason: "step_limit".into(),
            });
        }
        None
    }

    /// The synchronous prompt answered: the work is over. It answers a few milliseconds
    /// before the last step's events arrive, so the run ends on the answer when the events
    /// showed everything before it (see [`Translator::ends_with`]; the model gate counts
    /// the calls). Otherwise the idle event (or, polling, a poll now) ends the run.
    async fn answered(
        &mut self,
        last: Option<MessageWithParts>,
        streaming: bool,
        limits: &RunLimits,
    ) -> Step {
        let answers = limits
            .upstream
            .as_ref()
            .and_then(|health| health.lock().ok().map(|h| h.answers as usize));
        if let (Some(last), Some(answers)) = (&last, answers)
            && self.translator.ends_with(last, answers)
        {
            self.stats.ended_by = "the prompt's answer, with every step's events".into();
            return Step::Idle(self.translator.apply_snapshot(std::slice::from_ref(last)));
        }
        tracing::debug!(?answers, "the prompt answered before its events caught up");
        if streaming {
            return Step::Continue(Vec::new());
        }
        self.poll().await
    }

    async fn on_stream(
        &mut self,
        item: Option<StreamItem>,
        events: &mut Option<SessionEvents>,
    ) -> Step {
        let event = match item {
            Some(StreamItem::Event(event)) => *event,
            Some(StreamItem::Ended(reason)) => {
                *events = None;
                self.lost_stream(&reason);
                return Step::Continue(Vec::new());
            }
            None => {
                *events = None;
                self.lost_stream("the event stream ended");
                return Step::Continue(Vec::new());
            }
        };
        match &event {
            Event::PermissionAsked(request) => {
                self.refuse_permission(&request.id, &request.permission)
                    .await;
                Step::Continue(Vec::new())
            }
            // An idle event is believed at once when the events already show the whole
            // answer. Events can overtake each other under load (a message's completion
            // was seen before its text's last update); then it is believed once the
            // session's stored messages show a finished answer, or the session stays idle
            // for a while (polled meanwhile). Right after its loop OpenCode is busy and
            // takes ~20 ms to answer that look.
            Event::Idle | Event::Status(SessionStatus::Idle) if self.translator.is_active() => {
                if self.translator.settled() {
                    self.stats.ended_by = "idle, confirmed by its events".into();
                    return Step::Idle(Vec::new());
                }
                self.idle_unconfirmed = true;
                self.poll().await
            }
            _ => Step::Continue(self.translator.apply(&event)),
        }
    }

    /// Ends the run when the spawned server has exited.
    pub(super) fn check_alive(&self) -> Step {
        if self.server.is_alive() {
            return Step::Continue(Vec::new());
        }
        let report = self.server.exit_report().unwrap_or_default();
        Step::End(failed(
            ErrorCode::CodingAgentOpencodeStartFailed,
            format!("the OpenCode server exited during the run: {report}"),
        ))
    }

    async fn abort(&self) {
        let _ = tokio::time::timeout(ABORT_WAIT, self.client.abort(&self.session)).await;
    }

    fn gave_up_retrying(&self, bound: Duration) -> Outcome {
        let (attempt, message) = self
            .translator
            .retry()
            .map(|r| (r.attempt, r.message.clone()))
            .unwrap_or_default();
        Outcome::Failed {
            error: EventError {
                code: ErrorCode::CodingAgentModelError,
                message: format!(
                    "the model call kept failing ({message}); gave up after {} s of retries",
                    bound.as_secs()
                ),
                field: None,
                details: Some(serde_json::json!({
                    "upstream_error": message,
                    "attempts": attempt,
                })),
            },
        }
    }

    async fn forward(&mut self, emitted: Vec<Emitted>) -> Result<(), ()> {
        for (body, mut diagnostics) in emitted {
            if !self.pending.is_empty() {
                let mut own = std::mem::take(&mut self.pending);
                own.append(&mut diagnostics);
                diagnostics = own;
            }
            if self.stats.first_token_ms.is_none()
                && matches!(body, EventBody::AssistantDelta { .. })
            {
                self.stats.first_token_ms = Some(self.prompted.elapsed().as_millis() as u64);
            }
            self.sink.emit(body, diagnostics).await.map_err(|_| ())?;
        }
        self.report_calls().await;
        Ok(())
    }
}

async fn next_item(events: &mut Option<SessionEvents>) -> Option<StreamItem> {
    match events {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

async fn wait_sync(rx: &mut Option<SyncPrompt>) -> Result<Option<MessageWithParts>, ClientError> {
    match rx {
        Some(rx) => match rx.await {
            Ok(answer) => answer,
            // Its task ends only with the run; a dropped sender answers nothing new.
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The run's end when the model gate saw the provider fail: a stream cut before its end
/// marker at once, HTTP 429/5xx (or no answer) after [`UPSTREAM_ATTEMPTS`] in a row, with
/// the provider's status and message, instead of OpenCode's own minute of retries.
fn upstream_gave_out(limits: &RunLimits) -> Option<Outcome> {
    let health = limits.upstream.as_ref()?.lock().ok()?.clone();
    let (message, details) = if health.cut {
        (
            "the model's answer stream ended before it finished (no end marker)".to_owned(),
            serde_json::json!({"attempts": 1, "cut": true}),
        )
    } else if health.failures >= UPSTREAM_ATTEMPTS {
        let status = health.status.unwrap_or(502);
        (
            format!(
                "the model provider answered HTTP {status}: {} (after {} attempts)",
                health.message, health.failures
            ),
            serde_json::json!({"status": status, "attempts": health.failures, "upstream_error": health.message}),
        )
    } else {
        return None;
    };
    Some(Outcome::Failed {
        error: EventError {
            code: ErrorCode::CodingAgentModelError,
            message,
            field: None,
            details: Some(details),
        },
    })
}
