-- Issue 20. Files a user uploads to attach to prompts: the bytes are a content-addressed
-- blob; the row says whose it is and what it is. A chat message lists its attachments
-- as JSON (upload id, name, media type, size, optional draft path).

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       BIGINT NOT NULL,
    blob_hash  TEXT NOT NULL REFERENCES blobs (hash),
    created_at BIGINT NOT NULL
);
CREATE INDEX uploads_by_owner ON uploads (app_id, owner, created_at);

ALTER TABLE published_app_coding_chat_messages ADD COLUMN attachments TEXT;
