-- Runs, their event logs, and chat sessions. The partial unique index is the
-- one-active-run-per-app rule: the database, not a process, enforces it.

CREATE TABLE published_app_coding_chat_sessions (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX chat_sessions_by_owner
    ON published_app_coding_chat_sessions (app_id, user_id, updated_at);

CREATE TABLE published_app_coding_chat_messages (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES published_app_coding_chat_sessions (id) ON DELETE CASCADE,
    run_id     TEXT,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('complete', 'partial')),
    created_at BIGINT NOT NULL
);
CREATE INDEX chat_messages_by_session
    ON published_app_coding_chat_messages (session_id, created_at);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY,
    app_id              TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    chat_session_id     TEXT NOT NULL REFERENCES published_app_coding_chat_sessions (id),
    created_by          TEXT NOT NULL,
    status              TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'paused')),
    engine              TEXT NOT NULL,
    requested_model_id  TEXT NOT NULL,
    resolved_model_id   TEXT NOT NULL,
    input               TEXT NOT NULL,
    base_revision       BIGINT NOT NULL,
    owner_instance      TEXT NOT NULL,
    lease_expires_at    BIGINT NOT NULL,
    cancel_requested_by TEXT,
    error_code          TEXT,
    error_message       TEXT,
    summary             TEXT,
    result_revision     BIGINT,
    timing_metrics_ms   TEXT NOT NULL,
    next_seq            BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    ended_at            BIGINT
);
CREATE UNIQUE INDEX runs_one_active_per_app ON runs (app_id) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_app ON runs (app_id, created_at);
CREATE INDEX runs_active_by_owner ON runs (owner_instance) WHERE status IN ('queued', 'running');

CREATE TABLE run_events (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
