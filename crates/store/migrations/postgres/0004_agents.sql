-- Runtime agents and their tools, stored as validated JSON documents, and the context a
-- run was given (the selected agent's contract among it).

CREATE TABLE runtime_resources (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('agent', 'tool')),
    owner_user_id TEXT NOT NULL,
    name          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX runtime_resources_names ON runtime_resources (kind, owner_user_id, name);

ALTER TABLE runs ADD COLUMN input_params TEXT NOT NULL DEFAULT '{}';
