-- The start acknowledgement of a handed-over step: the same as the
-- PostgreSQL schema's 00030_step_start_ack.sql (started_attempt is the
-- latest attempt the worker acknowledged with its `start` report).

-- +goose Up
ALTER TABLE job_steps ADD COLUMN started_attempt INTEGER NOT NULL DEFAULT 0;
UPDATE job_steps SET started_attempt = attempt;
CREATE INDEX job_steps_unstarted_idx ON job_steps (started_at)
    WHERE status = 'running' AND started_attempt <> attempt;

-- +goose Down
DROP INDEX job_steps_unstarted_idx;
ALTER TABLE job_steps DROP COLUMN started_attempt;
