-- The same as the PostgreSQL schema's 00230_worker_tags_routing.sql: the
-- worker tags a step requires (a JSON list, sorted, each once) and whether
-- a worker is reserved for steps that require all of its tags.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN required_tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE workers DROP COLUMN exclusive;
ALTER TABLE job_steps DROP COLUMN required_tags;
