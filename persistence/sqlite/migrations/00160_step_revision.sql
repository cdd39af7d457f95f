-- The same as the PostgreSQL schema's 00160_step_revision.sql: the
-- revision a step of another workspace's action runs on (NULL: the job's).

-- +goose Up
ALTER TABLE job_steps ADD COLUMN revision TEXT;

-- +goose Down
ALTER TABLE job_steps DROP COLUMN revision;
