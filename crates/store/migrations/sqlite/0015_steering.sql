-- Steering: messages a person sends to a run while it works. Each is also the run's
-- `user.message` event (its `seq`) and a chat message; `delivered_at` is set once the
-- instance executing the run has claimed it for its engine, so a message posted to any
-- instance reaches the owner exactly once.

CREATE TABLE run_steering (
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    text         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_steering_waiting ON run_steering (run_id) WHERE delivered_at IS NULL;
