-- The same as the PostgreSQL schema's 00224_job_status_skipped.sql: the job
-- status `skipped` (a tick of a `concurrency: skip` trigger whose previous
-- job is unfinished), ended when it is recorded. The CHECK constraints are
-- widened in place as 00120_gates.sql does, and the migration fails when a
-- replacement did not match.

-- +goose Up
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(replace(sql,
    'CHECK (status IN (''pending'', ''running'', ''completed'', ''failed'', ''cancelled'')),',
    'CHECK (status IN (''pending'', ''running'', ''completed'', ''failed'', ''cancelled'', ''skipped'')),'),
    'CHECK ((status IN (''completed'', ''failed'', ''cancelled'')) = (completed_at IS NOT NULL))',
    'CHECK ((status IN (''completed'', ''failed'', ''cancelled'', ''skipped'')) = (completed_at IS NOT NULL))')
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
CREATE TEMP TABLE migration_00224_job_status_skipped (
    jobs_checks_widened INTEGER NOT NULL CHECK (jobs_checks_widened = 2)
);
INSERT INTO migration_00224_job_status_skipped
SELECT (instr(sql, '''failed'', ''cancelled'', ''skipped'')),') > 0)
     + (instr(sql, '''failed'', ''cancelled'', ''skipped'')) = (completed_at IS NOT NULL))') > 0)
FROM sqlite_schema WHERE type = 'table' AND name = 'jobs';
DROP TABLE migration_00224_job_status_skipped;

-- +goose Down
DELETE FROM jobs WHERE status = 'skipped';
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(replace(sql,
    '''cancelled'', ''skipped'')),', '''cancelled'')),'),
    '''cancelled'', ''skipped'')) = (completed_at', '''cancelled'')) = (completed_at')
WHERE type = 'table' AND name = 'jobs';
PRAGMA writable_schema = RESET;
