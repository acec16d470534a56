-- Foundation schema: tokens, web sessions, content-addressed blobs, apps and their drafts.
-- Timestamps are microseconds since the Unix epoch.

CREATE TABLE blobs (
    hash    TEXT PRIMARY KEY,
    size    BIGINT NOT NULL,
    content BYTEA NOT NULL
);

CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'builder')),
    label      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE web_sessions (
    session_hash TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'builder')),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE apps (
    id                TEXT PRIMARY KEY,
    slug              TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    template          TEXT NOT NULL,
    owner_user_id     TEXT NOT NULL,
    selected_agent_id TEXT,
    draft_revision    BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX apps_owner ON apps (owner_user_id, created_at);

-- The current manifest of each draft: path -> blob.
CREATE TABLE draft_files (
    app_id    TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    blob_hash TEXT NOT NULL REFERENCES blobs (hash),
    size      BIGINT NOT NULL,
    PRIMARY KEY (app_id, path)
);

-- One row per revision: who made it and when.
CREATE TABLE draft_revisions (
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    revision   BIGINT NOT NULL,
    author     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, revision)
);

-- What each revision changed, with the old value, so any earlier manifest can be rebuilt
-- from the current one and writing a revision costs only what it changes.
CREATE TABLE draft_changes (
    app_id   TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    revision BIGINT NOT NULL,
    path     TEXT NOT NULL,
    old_hash TEXT,
    old_size BIGINT,
    new_hash TEXT,
    new_size BIGINT,
    PRIMARY KEY (app_id, revision, path)
);
