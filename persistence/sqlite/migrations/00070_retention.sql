-- Retention (issue 24): the same indexes as the PostgreSQL schema's
-- 00070_retention.sql. jobs_completed_idx finds the oldest terminal jobs;
-- trigger_ticks_tick_idx finds old ticks across every trigger.

-- +goose Up
CREATE INDEX jobs_completed_idx ON jobs (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX trigger_ticks_tick_idx ON trigger_ticks (tick);

-- +goose Down
DROP INDEX trigger_ticks_tick_idx;
DROP INDEX jobs_completed_idx;
