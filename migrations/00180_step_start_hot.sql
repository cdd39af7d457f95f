-- A step's acknowledgement (StepStart) only sets started_attempt, but
-- job_steps_unstarted_idx names started_attempt in its predicate, so every
-- acknowledgement was a non-HOT update: a new row version entered the
-- primary key, the (job_id, position) index and the running-steps lease
-- index. Without that index no index names started_attempt, and the
-- acknowledgement can be a HOT update (no index entry) when the row's page
-- has room for the new version: the fillfactor keeps a fifth of each page
-- free for that (rows are updated three to four times in their life).
--
-- The give-back sweep (StepsGiveBackUnstarted) finds the running,
-- unacknowledged steps through job_steps_lease_idx instead (every running
-- step, bounded by the fleet's slots); unclaims find their step by key.
--
-- Locks: DROP INDEX takes an ACCESS EXCLUSIVE lock on job_steps for a
-- moment (it waits for the transactions using the table, and blocks them
-- meanwhile; no scan, no rewrite). SET (fillfactor) takes SHARE UPDATE
-- EXCLUSIVE and rewrites nothing: it applies to pages filled from now on.

-- +goose Up
DROP INDEX job_steps_unstarted_idx;
ALTER TABLE job_steps SET (fillfactor = 80);

-- +goose Down
ALTER TABLE job_steps RESET (fillfactor);
CREATE INDEX job_steps_unstarted_idx ON job_steps (started_at)
	WHERE status = 'running' AND started_attempt <> attempt;
