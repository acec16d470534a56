-- Issue 20. A chat's persisted history summary: it stands for every message up to and
-- including `through_message_id`, is written once and replaced only when the summary and
-- the turns after it no longer fit the history budget.

CREATE TABLE chat_summaries (
    session_id         TEXT PRIMARY KEY
        REFERENCES published_app_coding_chat_sessions (id) ON DELETE CASCADE,
    through_message_id TEXT NOT NULL,
    summary            TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
