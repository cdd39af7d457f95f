-- Triggers (issue 11): the ticks the cron scheduler fired, and the context
-- a job was started with (a webhook's headers and query).
--
-- trigger_ticks makes every scheduled tick fire exactly once, however many
-- servers run: the row is inserted in the same transaction as the job it
-- started, and its primary key refuses a second job for the same tick. The
-- latest row of a trigger is also what a starting server compares the cron
-- with to find the ticks it missed while it was down.
--
-- job_id is deliberately not a foreign key: a tick must stay fired even
-- when its job is deleted (job retention), or a lagging server could fire
-- it again.

-- +goose Up
CREATE TABLE trigger_ticks (
    workspace    text        NOT NULL,
    trigger_name text        NOT NULL,
    tick         timestamptz NOT NULL,
    job_id       uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace, trigger_name, tick)
);
-- From a job to its tick (concurrency: cancel_previous).
CREATE UNIQUE INDEX trigger_ticks_job_idx ON trigger_ticks (job_id);

-- Extra template variables of a job, by name: {"webhook": {"headers": {…},
-- "query": {…}}} for a job a webhook started; NULL for every other job.
ALTER TABLE jobs ADD COLUMN context jsonb;

-- The unfinished jobs of one trigger (concurrency: skip and
-- cancel_previous), without scanning every job the trigger ever started.
CREATE INDEX jobs_unfinished_source_idx ON jobs (workspace, source_type, source_id)
    WHERE status IN ('pending', 'running');

-- +goose Down
DROP INDEX jobs_unfinished_source_idx;
ALTER TABLE jobs DROP COLUMN context;
DROP TABLE trigger_ticks;
