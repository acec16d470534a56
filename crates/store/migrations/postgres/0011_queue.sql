-- The server-side prompt queue and the app event log. A queued prompt is deleted in the
-- same transaction that inserts its run, so the one-active-run index also guarantees that
-- no prompt starts twice. `queue_resumed_after` names the failed run a hold was lifted
-- after; `next_event_seq` numbers the app's own event log.

CREATE TABLE run_queue (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    position           BIGINT NOT NULL,
    input              TEXT NOT NULL,
    requested_model_id TEXT NOT NULL,
    resolved_model_id  TEXT NOT NULL,
    engine             TEXT NOT NULL,
    chat_session_id    TEXT REFERENCES published_app_coding_chat_sessions (id),
    created_by         TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX run_queue_by_app ON run_queue (app_id, position);

ALTER TABLE apps ADD COLUMN queue_resumed_after TEXT;
ALTER TABLE apps ADD COLUMN next_event_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE app_events (
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, seq)
);
