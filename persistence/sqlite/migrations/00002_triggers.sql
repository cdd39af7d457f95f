-- Triggers: the ticks the cron scheduler fired, and the context a job was
-- started with (a webhook's headers and query). The same as the PostgreSQL
-- schema's 00003_triggers.sql.
--
-- A trigger_ticks row is inserted in the same transaction as the job it
-- started, and its primary key refuses a second job for the same tick.
-- job_id is deliberately not a foreign key: a tick stays fired even when
-- its job is deleted.

-- +goose Up
CREATE TABLE trigger_ticks (
    workspace    TEXT    NOT NULL,
    trigger_name TEXT    NOT NULL,
    tick         INTEGER NOT NULL,
    job_id       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace, trigger_name, tick)
) STRICT;
CREATE UNIQUE INDEX trigger_ticks_job_idx ON trigger_ticks (job_id);

-- Extra template variables of a job, by name, as JSON; NULL for most jobs.
ALTER TABLE jobs ADD COLUMN context TEXT;

-- The unfinished jobs of one trigger, without scanning all its jobs.
CREATE INDEX jobs_unfinished_source_idx ON jobs (workspace, source_type, source_id)
    WHERE status IN ('pending', 'running');

-- +goose Down
DROP INDEX jobs_unfinished_source_idx;
ALTER TABLE jobs DROP COLUMN context;
DROP TABLE trigger_ticks;
