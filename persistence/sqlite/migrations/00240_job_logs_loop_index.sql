-- The same as the PostgreSQL schema's 00240_job_logs_loop_index.sql: the
-- lines of a loop's instances ("deploy[0]", …), keyed by their loop
-- ("deploy["), in seq order.

-- +goose Up
CREATE INDEX job_logs_loop_idx ON job_logs (job_id, rtrim(step_name, '0123456789]'), seq) WHERE step_name LIKE '%]';

-- +goose Down
DROP INDEX job_logs_loop_idx;
