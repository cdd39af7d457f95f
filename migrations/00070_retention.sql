-- Retention and metrics (issue 24).
--
-- jobs_completed_idx finds the oldest terminal jobs for retention without
-- scanning the jobs that are still pending or running (completed_at is
-- set exactly when a job is terminal). trigger_ticks_tick_idx finds old
-- ticks across every trigger.

-- +goose Up
CREATE INDEX jobs_completed_idx ON jobs (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX trigger_ticks_tick_idx ON trigger_ticks (tick);

-- +goose Down
DROP INDEX trigger_ticks_tick_idx;
DROP INDEX jobs_completed_idx;
