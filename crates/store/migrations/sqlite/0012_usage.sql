-- Usage and cost: one row per model call (the record usage is reported from) and the
-- run's running totals beside its other columns (what `usage` on a run, the terminal
-- event and the per-run budget read). Costs are integer micro-dollars.

CREATE TABLE model_calls (
    run_id             TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    app_id             TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    model              TEXT NOT NULL,
    step               BIGINT NOT NULL,
    input_tokens       BIGINT NOT NULL,
    output_tokens      BIGINT NOT NULL,
    cache_read_tokens  BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens   BIGINT NOT NULL,
    cost_micro_usd     BIGINT NOT NULL,
    estimated          BIGINT NOT NULL CHECK (estimated IN (0, 1)),
    ms                 BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX model_calls_by_time ON model_calls (created_at);
CREATE INDEX model_calls_by_user ON model_calls (user_id, created_at);

ALTER TABLE runs ADD COLUMN usage_input_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_output_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_cache_read_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_cache_write_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_reasoning_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_cost_micro_usd BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_model_calls BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN usage_estimated_calls BIGINT NOT NULL DEFAULT 0;
