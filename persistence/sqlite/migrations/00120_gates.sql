-- Issue 19 part B, as the PostgreSQL schema's 00120_gates.sql: the step
-- status `suspended` and the job source types `hook` and `task`.
-- SQLite cannot alter a CHECK constraint; widening one changes no stored
-- row, so the table definitions are edited in place as the SQLite manual
-- describes for such changes (ALTER TABLE, "making other kinds of table
-- schema changes"), and the schema is reloaded.

-- +goose Up
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''skipped'', ''cancelled'')),', '''skipped'', ''cancelled'', ''suspended'')),')
WHERE type = 'table' AND name = 'job_steps';
UPDATE sqlite_schema
SET sql = replace(sql, '''trigger'', ''webhook'')),', '''trigger'', ''webhook'', ''hook'', ''task'')),')
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
-- replace() changes nothing when its text does not match: check that both
-- constraints were widened, or fail the migration (rolled back) here
-- rather than at the first insert of a suspended step.
CREATE TEMP TABLE migration_00120_gates (
    job_steps_and_jobs_checks_widened INTEGER NOT NULL
        CHECK (job_steps_and_jobs_checks_widened = 2)
);
INSERT INTO migration_00120_gates
SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND (
    (name = 'job_steps' AND instr(sql, '''skipped'', ''cancelled'', ''suspended'')),') > 0) OR
    (name = 'jobs' AND instr(sql, '''trigger'', ''webhook'', ''hook'', ''task'')),') > 0));
DROP TABLE migration_00120_gates;
CREATE INDEX job_steps_suspended_idx ON job_steps (job_id) WHERE status = 'suspended';

-- +goose Down
DROP INDEX job_steps_suspended_idx;
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, ', ''suspended'')),', ')),')
WHERE type = 'table' AND name = 'job_steps';
UPDATE sqlite_schema
SET sql = replace(sql, ', ''hook'', ''task'')),', ')),')
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
