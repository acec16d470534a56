//! The app's own event log: appended inside the transaction that makes the change (a run
//! accepted or ended, the queue changed, the draft revised), numbered by the app row's
//! counter, so the log has no gap and never tells of a change that did not commit.

use draftsmith_core::{AppEvent, AppEventBody, AppId, Timestamp};
use sqlx::{AnyPool, Row};

use crate::error::{Result, StoreError};
use crate::run_log::SEQ_MARK;
use crate::sql::{self, Script, Tx};

/// Claims the app's next `seq` and writes the event.
pub(crate) async fn append_in_tx(tx: &mut Tx, app: AppId, body: AppEventBody) -> Result<AppEvent> {
    let row = sqlx::query(
        "UPDATE apps SET next_event_seq = next_event_seq + 1 WHERE id = $1 \
         RETURNING next_event_seq",
    )
    .bind(app.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    let event = claimed(app, row.try_get("next_event_seq")?, body);
    insert(tx, &event).await?;
    Ok(event)
}

/// The event `body` at `seq`, a number the caller claimed from the app row's counter in
/// the statement that locked the row (see [`crate::draft_writes::claim_revision`]).
pub(crate) fn claimed(app: AppId, seq: i64, body: AppEventBody) -> AppEvent {
    AppEvent {
        body,
        app_id: app,
        seq,
        ts: Timestamp::now(),
    }
}

/// The event `body` before its `seq` is claimed: its text carries [`seq_mark`], which the
/// statement that claims the `seq` replaces.
pub(crate) fn unclaimed(app: AppId, body: AppEventBody) -> AppEvent {
    claimed(app, SEQ_MARK, body)
}

/// What stands for the `seq` in an unclaimed event's text.
pub(crate) fn seq_mark() -> String {
    format!("\"seq\":{SEQ_MARK}")
}

/// Writes an event whose `seq` is claimed.
pub(crate) async fn insert(tx: &mut Tx, event: &AppEvent) -> Result<()> {
    let mut script = Script::new(tx);
    push_insert(&mut script, event)?;
    script.run(tx).await
}

/// Adds to `script` the write of an event whose `seq` is claimed.
pub(crate) fn push_insert(script: &mut Script, event: &AppEvent) -> Result<()> {
    let marks = script.marks().list(1, 5);
    script.push(
        format!(
            "INSERT INTO app_events (app_id, seq, event_type, body, created_at) \
             VALUES ({marks})"
        ),
        vec![
            event.app_id.to_string().into(),
            event.seq.into(),
            event.body.event_type().into(),
            sql::to_json(event)?.into(),
            event.ts.as_micros().into(),
        ],
    );
    Ok(())
}

/// Events with `seq > after`, in order.
pub(crate) async fn events_after(
    pool: &AnyPool,
    app: AppId,
    after: i64,
    limit: i64,
) -> Result<Vec<AppEvent>> {
    sql::log_after(pool, "app_events", "app_id", app.to_string(), after, limit).await
}
