-- A run announces its new events to other instances (`NOTIFY draftsmith_run_events` in the
-- statement that appends them) only while a follower on another instance watches it.
-- Every notification is a global lock at commit and a wake-up of each instance's listener
-- (the owner's own listener read and dropped every one); a run that nobody follows from
-- elsewhere, which is nearly every run, now costs none of that. `watched_until` is when
-- the current watch lapses (microseconds since the epoch, 0: never watched); a follower's
-- instance sets it when the follower subscribes and renews it while it follows.
ALTER TABLE runs ADD COLUMN watched_until BIGINT NOT NULL DEFAULT 0;
