-- The tables written once per file or per event keep their references without a foreign
-- key trigger. PostgreSQL checks each inserted or re-pointed row with a query that locks
-- the parent row (`FOR KEY SHARE`): a restore of 50 files spent about half its time in
-- those checks (1.2 ms for the blob references, 1.1 ms for the app references, against
-- 3.6 ms for the whole write), and the key-share locks on blobs that many apps share (a
-- template's files) are writes to those blob rows that concurrent transactions contend on.
--
-- What the triggers checked is held by the writers instead: every statement that adds these
-- rows runs in a transaction that first locked or claimed the parent (the app row for the
-- draft, its log and its events; the run row for its events and model calls), and a blob
-- is stored, immutable, before any draft, checkpoint or restore names it. No parent row is
-- ever deleted (apps, runs, checkpoints and blobs have no deletion), so nothing relied on
-- the cascades. The references written a few times per run (runs, sessions, messages,
-- releases, uploads, the queue) keep their foreign keys.
ALTER TABLE draft_files DROP CONSTRAINT draft_files_app_id_fkey;
ALTER TABLE draft_files DROP CONSTRAINT draft_files_blob_hash_fkey;
ALTER TABLE draft_changes DROP CONSTRAINT draft_changes_app_id_fkey;
ALTER TABLE draft_revisions DROP CONSTRAINT draft_revisions_app_id_fkey;
ALTER TABLE checkpoints DROP CONSTRAINT checkpoints_app_id_fkey;
ALTER TABLE checkpoint_changes DROP CONSTRAINT checkpoint_changes_checkpoint_id_fkey;
ALTER TABLE checkpoint_changes DROP CONSTRAINT checkpoint_changes_blob_hash_fkey;
ALTER TABLE app_events DROP CONSTRAINT app_events_app_id_fkey;
ALTER TABLE run_events DROP CONSTRAINT run_events_run_id_fkey;
ALTER TABLE model_calls DROP CONSTRAINT model_calls_run_id_fkey;
