-- A transition re-reads the step rows of its job that changed since its
-- last read (claims, acknowledgements, heartbeats, other servers). It found
-- them by comparing every row's xmin with the one it kept: a visit of every
-- step row of the job at every transition, O(steps) — in a 10,000-step
-- fan-out the most PostgreSQL's CPU per step grew by (issue 23).
--
-- version is the id of the transaction that last wrote the row (the
-- trigger sets it on every insert and update, whoever writes), and
-- job_steps_version_idx finds a job's rows written since a given id. It is
-- partial (version IS NOT NULL, which a test of version >= x implies) only
-- so that no other statement can use it: by job_id alone it looks as good
-- as the (job_id, position) index to a generic plan made on a young table,
-- and the transition's step write chose it, reading every step of the job
-- to find one by position (TestKeyedPlansUseIndexesOnAYoungTable). A
-- transition keeps, with its read, the xmin of the read's snapshot: every
-- transaction still running then, or begun since, has an id at least that,
-- so the next read takes the rows with version >= it and misses none. A
-- transaction that runs for long elsewhere holds that xmin back, and reads
-- take more rows meanwhile, never fewer.
--
-- Rows written before this migration keep a NULL version: a server reads
-- a job's every step after it starts (its cache is empty), so those rows are
-- known, and a row gets a version with its next write.
--
-- Locks: ADD COLUMN without a default and CREATE TRIGGER take an ACCESS
-- EXCLUSIVE lock on job_steps for a moment (no rewrite). CREATE INDEX takes
-- a SHARE lock: writes to job_steps wait while it reads the table.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN version bigint;

-- +goose StatementBegin
CREATE FUNCTION stroem_step_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.version := pg_current_xact_id()::text::bigint;
	RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER job_steps_version BEFORE INSERT OR UPDATE ON job_steps
	FOR EACH ROW EXECUTE FUNCTION stroem_step_version();
CREATE INDEX job_steps_version_idx ON job_steps (job_id, version) WHERE version IS NOT NULL;

-- +goose Down
DROP INDEX job_steps_version_idx;
DROP TRIGGER job_steps_version ON job_steps;
DROP FUNCTION stroem_step_version();
ALTER TABLE job_steps DROP COLUMN version;
