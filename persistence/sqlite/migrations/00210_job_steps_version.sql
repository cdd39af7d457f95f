-- A transition re-reads only the step rows of its job written since its
-- last read, as the PostgreSQL schema's 00210_job_steps_version.sql does;
-- reading every step row of the job at every transition made a step of a
-- 4,000-step fan-out cost 2.4 times what one of a 400-step fan-out did.
--
-- SQLite has no transaction ids: step_clock holds a counter instead. Each
-- JobUpdate adds one to it in its write transaction, first, and keeps the
-- value it got as the horizon of its read. Every write of a step row stamps
-- the row's version with the counter as it stands (the store's statements
-- set it; the triggers below set it for any other write, and are no-ops
-- for a row already stamped). Writes are serialized (one write lock) and
-- the counter never goes down, so every row written since a read has a
-- version at least that read's horizon: the next read takes the rows with
-- version >= it, its own writes included, and misses none.
--
-- Rows written before this migration keep a NULL version: a store reads
-- a job's every step once after it opens (its cache is empty), so those
-- rows are known, and a row gets a version with its next write.

-- +goose Up
CREATE TABLE step_clock (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    tick INTEGER NOT NULL
) STRICT;
INSERT INTO step_clock (id, tick) VALUES (1, 1);

ALTER TABLE job_steps ADD COLUMN version INTEGER;
CREATE INDEX job_steps_version_idx ON job_steps (job_id, version) WHERE version IS NOT NULL;

-- +goose StatementBegin
CREATE TRIGGER job_steps_version_insert AFTER INSERT ON job_steps
    WHEN NEW.version IS NOT (SELECT tick FROM step_clock)
BEGIN
    UPDATE job_steps SET version = (SELECT tick FROM step_clock) WHERE rowid = NEW.rowid;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER job_steps_version_update AFTER UPDATE ON job_steps
    WHEN NEW.version IS NOT (SELECT tick FROM step_clock)
BEGIN
    UPDATE job_steps SET version = (SELECT tick FROM step_clock) WHERE rowid = NEW.rowid;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER job_steps_version_update;
DROP TRIGGER job_steps_version_insert;
DROP INDEX job_steps_version_idx;
ALTER TABLE job_steps DROP COLUMN version;
DROP TABLE step_clock;
