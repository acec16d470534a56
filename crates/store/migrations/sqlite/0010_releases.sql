-- Publishing: immutable releases (their built files are blobs, so equal files across
-- releases are stored once) and one publication pointer per app.

CREATE TABLE releases (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    number        BIGINT NOT NULL,
    revision      BIGINT NOT NULL,
    checkpoint_id TEXT,
    build_log     TEXT NOT NULL,
    file_count    BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (app_id, number)
);

CREATE TABLE release_files (
    release_id   TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    blob_hash    TEXT NOT NULL REFERENCES blobs (hash),
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    gzip_hash    TEXT REFERENCES blobs (hash),
    gzip_size    BIGINT,
    br_hash      TEXT REFERENCES blobs (hash),
    br_size      BIGINT,
    PRIMARY KEY (release_id, path)
);

CREATE TABLE publications (
    app_id     TEXT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    release_id TEXT REFERENCES releases (id),
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    key_hash   TEXT,
    updated_at BIGINT NOT NULL
);
