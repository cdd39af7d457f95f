-- +goose Up
-- Issue 19 part B: server-side steps that wait (approval gates, `type: task`
-- steps waiting for their child job) are `suspended`; jobs started by a
-- hook or by a `type: task` step have source type `hook` or `task`.
-- A suspended step holds no worker and no lease, so the running-step rule
-- does not apply to it.
ALTER TABLE job_steps DROP CONSTRAINT job_steps_status_check;
ALTER TABLE job_steps ADD CONSTRAINT job_steps_status_check
    CHECK (status IN ('pending', 'ready', 'running', 'completed', 'failed', 'skipped', 'cancelled', 'suspended'));
ALTER TABLE jobs DROP CONSTRAINT jobs_source_type_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_source_type_check
    CHECK (source_type IN ('api', 'user', 'trigger', 'webhook', 'hook', 'task'));
-- The waits a server resumes at start, and the hook jobs of a job.
CREATE INDEX job_steps_suspended_idx ON job_steps (job_id) WHERE status = 'suspended';

-- +goose Down
DROP INDEX job_steps_suspended_idx;
ALTER TABLE jobs DROP CONSTRAINT jobs_source_type_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_source_type_check
    CHECK (source_type IN ('api', 'user', 'trigger', 'webhook'));
ALTER TABLE job_steps DROP CONSTRAINT job_steps_status_check;
ALTER TABLE job_steps ADD CONSTRAINT job_steps_status_check
    CHECK (status IN ('pending', 'ready', 'running', 'completed', 'failed', 'skipped', 'cancelled'));
