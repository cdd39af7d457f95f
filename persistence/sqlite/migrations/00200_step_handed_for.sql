-- The same as the PostgreSQL schema's 00200_step_handed_for.sql: the
-- completion a started claim was made for, by which a repeated completion
-- finds its step again.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN handed_for TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE job_steps DROP COLUMN handed_for;
