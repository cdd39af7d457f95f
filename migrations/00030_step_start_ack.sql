-- +goose Up
-- A step handed to a worker counts as started only once the worker
-- acknowledges it (its `start` report): started_attempt is the latest
-- attempt acknowledged. A running step whose attempt is not its
-- started_attempt was handed over but not started, and is given back to
-- ready — its attempt not used — when no acknowledgement comes in time.
-- Claims and hand-offs need not write it: a new attempt is unacknowledged
-- until StepStart says otherwise.
ALTER TABLE job_steps ADD COLUMN started_attempt integer NOT NULL DEFAULT 0;
-- Steps running now were started by a version without acknowledgements.
UPDATE job_steps SET started_attempt = attempt;
CREATE INDEX job_steps_unstarted_idx ON job_steps (started_at)
	WHERE status = 'running' AND started_attempt <> attempt;

-- +goose Down
DROP INDEX job_steps_unstarted_idx;
ALTER TABLE job_steps DROP COLUMN started_attempt;
