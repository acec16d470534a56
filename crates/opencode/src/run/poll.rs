//! Following the session without its event stream: poll the messages, the status and
//! pending permission requests, and decide when an idle session is really done.

use super::*;

impl Run<'_> {
    /// One poll: messages, status and pending permissions, asked at once. An idle it
    /// confirms comes with the messages read after the idle was seen, so nothing the
    /// session holds is missed.
    pub(super) async fn poll(&mut self) -> Step {
        let client = self.client;
        let (messages, statuses, permissions) = tokio::join!(
            client.messages(&self.session),
            client.statuses(),
            client.permissions()
        );
        let messages = match messages {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(error = %err, "polling the OpenCode session failed");
                let since = *self.poll_failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > POLL_GIVE_UP {
                    return Step::End(failed(
                        ErrorCode::CodingAgentOpencodeStartFailed,
                        format!("lost contact with the OpenCode server: {err}"),
                    ));
                }
                return self.check_alive();
            }
        };
        self.poll_failing_since = None;
        let mut emitted = self.translator.apply_snapshot(&messages);
        let status = statuses.ok().map(|all| {
            all.get(&self.session)
                .cloned()
                .unwrap_or(SessionStatus::Idle)
        });
        if let Ok(requests) = permissions {
            let session = self.session.clone();
            for request in requests.iter().filter(|r| r.session_id == session) {
                self.refuse_permission(&request.id, &request.permission)
                    .await;
            }
        }
        let Some(status) = status else {
            return Step::Continue(emitted);
        };
        if status != SessionStatus::Idle {
            self.idle_since = None;
            self.idle_unconfirmed = false;
            emitted.extend(self.translator.apply(&Event::Status(status)));
            return Step::Continue(emitted);
        }
        if !self.translator.is_active() {
            return Step::Continue(emitted);
        }
        let idle_since = *self.idle_since.get_or_insert_with(Instant::now);
        if settled(&messages) || idle_since.elapsed() >= IDLE_CONFIRM {
            self.stats.ended_by = match (settled(&messages), self.stats.polled) {
                (true, false) => "idle, confirmed by the messages".into(),
                (true, true) => "idle (polled), confirmed by the messages".into(),
                (false, _) => format!(
                    "idle for {} s without a finished answer",
                    IDLE_CONFIRM.as_secs()
                ),
            };
            return Step::Idle(emitted);
        }
        Step::Continue(emitted)
    }

    /// Switches to polling, telling the stream why on the next event.
    pub(super) fn lost_stream(&mut self, reason: &str) {
        self.stats.polled = true;
        tracing::warn!(
            reason,
            "OpenCode event stream lost; polling the session instead"
        );
        self.pending.push(Diagnostic {
            code: "opencode_event_stream_lost".into(),
            message: format!("{reason}; following the session by polling"),
        });
    }

    /// Rejects a permission request so no tool waits for a person.
    pub(super) async fn refuse_permission(&mut self, id: &str, permission: &str) {
        let result = self
            .client
            .reply_permission(id, "reject", PERMISSION_REFUSAL)
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, id, "could not answer an OpenCode permission request");
        }
        self.pending.push(Diagnostic {
            code: "opencode_permission_refused".into(),
            message: format!("OpenCode asked for permission `{permission}`; refused"),
        });
    }
}

/// The session's last message is a finished answer (not a call for more tool rounds).
fn settled(messages: &[MessageWithParts]) -> bool {
    messages.last().is_some_and(|m| m.info.ends_the_work())
}
