-- Checkpoints: immutable pointers to a draft manifest. Most point at a draft revision;
-- a `rejected` one holds the changes of work that never became a revision, on top of its
-- base revision (paths and blob hashes only: no content is copied).

CREATE TABLE checkpoints (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('pre_run', 'post_run', 'restore', 'manual', 'rejected')),
    revision   BIGINT NOT NULL,
    detached   BIGINT NOT NULL,
    run_id     TEXT,
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX checkpoints_by_app ON checkpoints (app_id, created_at);

CREATE TABLE checkpoint_changes (
    checkpoint_id TEXT NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    blob_hash     TEXT REFERENCES blobs (hash),
    size          BIGINT,
    PRIMARY KEY (checkpoint_id, path)
);
