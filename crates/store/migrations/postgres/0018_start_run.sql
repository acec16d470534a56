-- Starting a run in one call, so a run's creation costs one round trip and one commit
-- instead of ten round trips (see `run_start`): called outside a transaction, it is its
-- own. Its statements run in order under the app row's lock, taken first, so run
-- creation stays ordered against restores and draft writes of the same app.
--
-- Answers NULL when the app does not exist, `{"chat": "missing"}` (having written nothing)
-- when the continued chat session is not the user's on the app, else `{"revision": the
-- draft revision the run starts from}`. A second active run of the app fails the run's
-- insert on the one-active-run-per-app index (a unique violation), which undoes
-- everything; the caller reports the active run.
--
-- Rust builds what has a Rust shape and passes it in: the ids, the session's title, the
-- wire names, the two first run events (`created` holds `revision_mark` where the starting
-- revision goes, filled in here) and the `run.accepted` app event (its `seq` filled in
-- here).
CREATE FUNCTION start_run(
    target_app TEXT,
    new_run TEXT,
    chat TEXT,
    chat_is_new BOOLEAN,
    chat_title TEXT,
    starter TEXT,
    engine TEXT,
    requested TEXT,
    resolved TEXT,
    prompt TEXT,
    owner TEXT,
    lease_until BIGINT,
    now_us BIGINT,
    params TEXT,
    last_seq BIGINT,
    message TEXT,
    message_role TEXT,
    message_status TEXT,
    message_attachments TEXT,
    pre_run TEXT,
    pre_run_kind TEXT,
    pre_run_label TEXT,
    accepted_type TEXT,
    accepted TEXT,
    created_type TEXT,
    created TEXT,
    revision_mark TEXT,
    announced TEXT,
    announced_us BIGINT
) RETURNS TEXT LANGUAGE plpgsql
-- Each statement is planned once per connection, not at each call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    base BIGINT;
    claimed_seq BIGINT;
BEGIN
    UPDATE apps SET updated_at = updated_at WHERE id = target_app
    RETURNING draft_revision INTO base;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF chat_is_new THEN
        INSERT INTO published_app_coding_chat_sessions
            (id, app_id, user_id, title, created_at, updated_at)
        VALUES (chat, target_app, starter, chat_title, now_us, now_us);
    ELSE
        PERFORM 1 FROM published_app_coding_chat_sessions
        WHERE id = chat AND app_id = target_app AND user_id = starter;
        IF NOT FOUND THEN
            RETURN '{"chat": "missing"}';
        END IF;
    END IF;
    INSERT INTO runs (id, app_id, chat_session_id, created_by, status, engine,
        requested_model_id, resolved_model_id, input, base_revision, owner_instance,
        lease_expires_at, timing_metrics_ms, next_seq, created_at, input_params)
    VALUES (new_run, target_app, chat, starter, 'queued', engine, requested, resolved,
        prompt, base, owner, lease_until, '{}', last_seq, now_us, params);
    INSERT INTO published_app_coding_chat_messages
        (id, session_id, run_id, role, content, status, created_at, attachments)
    VALUES (message, chat, new_run, message_role, prompt, message_status, now_us,
        message_attachments);
    UPDATE published_app_coding_chat_sessions SET updated_at = now_us WHERE id = chat;
    INSERT INTO checkpoints
        (id, app_id, kind, revision, detached, run_id, label, created_by, created_at)
    VALUES (pre_run, target_app, pre_run_kind, base, 0, new_run, pre_run_label, starter,
        now_us);
    INSERT INTO run_events (run_id, seq, event_type, body, created_at)
    VALUES (new_run, last_seq - 1, accepted_type, accepted, now_us),
        (new_run, last_seq, created_type, replace(created, revision_mark, base::text),
            now_us);
    UPDATE apps SET next_event_seq = next_event_seq + 1 WHERE id = target_app
    RETURNING next_event_seq INTO claimed_seq;
    INSERT INTO app_events (app_id, seq, event_type, body, created_at)
    VALUES (target_app, claimed_seq, announced::jsonb ->> 'event',
        jsonb_set(announced::jsonb, '{seq}', to_jsonb(claimed_seq))::text, announced_us);
    RETURN jsonb_build_object('revision', base)::text;
END
$$;
