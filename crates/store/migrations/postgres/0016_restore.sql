-- Restoring a draft to a checkpoint in one call, so the restore costs one round trip and,
-- called outside a transaction, is its own transaction (one commit). Its statements run in
-- order, each seeing every commit before it: the app row is locked first (a run cannot
-- start in between, and no write lands between the read and the write), then an active
-- run is looked for, then the revision and the `draft.revised` seq are claimed, then what
-- differs is read and written.
--
-- What differs: each path the change log touched after the checkpoint's revision (its
-- content then is the old side of its first change since) and each of the checkpoint's
-- detached paths (their content then is what the checkpoint kept), against what the draft
-- holds now; equal sides are left alone.
--
-- Answers NULL when the app does not exist, `{"active": run id}` (having changed nothing)
-- when a run of the app is active, else `{"revision": the new revision, "moves": [{path,
-- old_hash, old_size, new_hash, new_size}]}` with the paths it changed. The caller builds
-- the `draft.revised` event (`event`, its `seq` and `payload.revision` filled in here) and
-- names the statuses that count as active (`active`, a JSON array), so their shapes live
-- in one place.
CREATE FUNCTION restore_draft(
    target_app TEXT,
    target_revision BIGINT,
    target_checkpoint TEXT,
    active TEXT,
    author TEXT,
    now_us BIGINT,
    event TEXT,
    replaced_id TEXT,
    replaced_kind TEXT,
    replaced_label TEXT
) RETURNS TEXT LANGUAGE plpgsql
-- Each statement is planned once per connection, not at each call (planning the write
-- cost as much as running it), and every plan looks rows up by key: a generic plan must
-- not fall back to scanning a table whose statistics show one app.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    running TEXT;
    claimed_revision BIGINT;
    claimed_seq BIGINT;
    moved JSONB;
BEGIN
    PERFORM 1 FROM apps WHERE id = target_app FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT r.id INTO running FROM runs r
    WHERE r.app_id = target_app
      AND r.status IN (SELECT jsonb_array_elements_text(active::jsonb))
    LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object('active', running)::text;
    END IF;
    UPDATE apps SET draft_revision = draft_revision + 1,
        next_event_seq = next_event_seq + 1, updated_at = now_us
    WHERE id = target_app
    RETURNING draft_revision, next_event_seq INTO claimed_revision, claimed_seq;

    WITH detached AS (
        SELECT c.path, c.blob_hash AS hash, c.size
        FROM checkpoint_changes c WHERE c.checkpoint_id = target_checkpoint
    ), logged_since AS (
        -- One row per path, its first change since: sorted bytewise, as nothing here
        -- needs the database's collation.
        SELECT DISTINCT ON (l.path COLLATE "C") l.path, l.old_hash AS hash, l.old_size AS size
        FROM draft_changes l
        WHERE l.app_id = target_app AND l.revision > target_revision
        ORDER BY l.path COLLATE "C", l.revision
    ), wanted AS (
        SELECT * FROM detached
        UNION ALL
        SELECT * FROM logged_since s WHERE s.path NOT IN (SELECT d.path FROM detached d)
    ), moves AS (
        SELECT w.path, f.blob_hash AS old_hash, f.size AS old_size,
            w.hash AS new_hash, w.size AS new_size
        FROM wanted w
        LEFT JOIN draft_files f ON f.app_id = target_app AND f.path = w.path
        WHERE w.hash IS DISTINCT FROM f.blob_hash
    ), kept AS (
        INSERT INTO draft_files (app_id, path, blob_hash, size)
        SELECT target_app, m.path, m.new_hash, m.new_size FROM moves m
        WHERE m.new_hash IS NOT NULL
        ON CONFLICT (app_id, path) DO UPDATE
        SET blob_hash = excluded.blob_hash, size = excluded.size
    ), gone AS (
        DELETE FROM draft_files f WHERE f.app_id = target_app
          AND f.path IN (SELECT m.path FROM moves m WHERE m.new_hash IS NULL)
    ), logged AS (
        INSERT INTO draft_changes
            (app_id, revision, path, old_hash, old_size, new_hash, new_size)
        SELECT target_app, claimed_revision, m.path, m.old_hash, m.old_size,
            m.new_hash, m.new_size
        FROM moves m
    )
    SELECT COALESCE(jsonb_agg(to_jsonb(m)), '[]'::jsonb) INTO moved FROM moves m;

    INSERT INTO draft_revisions (app_id, revision, author, created_at)
    VALUES (target_app, claimed_revision, author, now_us);
    INSERT INTO app_events (app_id, seq, event_type, body, created_at)
    VALUES (
        target_app, claimed_seq, event::jsonb ->> 'event',
        jsonb_set(jsonb_set(event::jsonb, '{seq}', to_jsonb(claimed_seq)),
            '{payload,revision}', to_jsonb(claimed_revision))::text,
        now_us
    );
    INSERT INTO checkpoints
        (id, app_id, kind, revision, detached, run_id, label, created_by, created_at)
    VALUES (replaced_id, target_app, replaced_kind, claimed_revision - 1, 0, NULL,
        replaced_label, author, now_us);
    RETURN jsonb_build_object('revision', claimed_revision, 'moves', moved)::text;
END
$$;
