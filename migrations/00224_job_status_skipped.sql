-- A cron trigger with `concurrency: skip` whose previous job is unfinished
-- records the tick as a job of status `skipped`, as the upstream Strøm does:
-- the job's row only (no steps ran), ended when it was recorded.

-- +goose Up
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'skipped'));
ALTER TABLE jobs DROP CONSTRAINT jobs_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_check
    CHECK ((status IN ('completed', 'failed', 'cancelled', 'skipped')) = (completed_at IS NOT NULL));

-- +goose Down
DELETE FROM jobs WHERE status = 'skipped';
ALTER TABLE jobs DROP CONSTRAINT jobs_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_check
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL));
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'));
