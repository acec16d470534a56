-- The draft's tables stored in their primary key's order (`WITHOUT ROWID`): a range of the
-- change log (a restore reads the revisions after a checkpoint's) and a file looked up by
-- path are read from one b-tree, not an index and then the table by rowid, and each row
-- written updates one b-tree instead of two. Their rows are small (a path and a hash or
-- two), as such tables want. PostgreSQL's heap and index need no such change.

CREATE TABLE draft_files_clustered (
    app_id    TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    path      TEXT NOT NULL,
    blob_hash TEXT NOT NULL REFERENCES blobs (hash),
    size      BIGINT NOT NULL,
    PRIMARY KEY (app_id, path)
) WITHOUT ROWID;
INSERT INTO draft_files_clustered (app_id, path, blob_hash, size)
SELECT app_id, path, blob_hash, size FROM draft_files;
DROP TABLE draft_files;
ALTER TABLE draft_files_clustered RENAME TO draft_files;

CREATE TABLE draft_changes_clustered (
    app_id   TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    revision BIGINT NOT NULL,
    path     TEXT NOT NULL,
    old_hash TEXT,
    old_size BIGINT,
    new_hash TEXT,
    new_size BIGINT,
    PRIMARY KEY (app_id, revision, path)
) WITHOUT ROWID;
INSERT INTO draft_changes_clustered
    (app_id, revision, path, old_hash, old_size, new_hash, new_size)
SELECT app_id, revision, path, old_hash, old_size, new_hash, new_size FROM draft_changes;
DROP TABLE draft_changes;
ALTER TABLE draft_changes_clustered RENAME TO draft_changes;
