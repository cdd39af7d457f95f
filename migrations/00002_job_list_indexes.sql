-- Index changes found by the plan tests and benchmarks on 100,000 jobs:
--
-- * the job list filtered by task alone (no workspace) scanned the whole
--   time index, filtering; this index serves it in list order;
-- * the unfinished-jobs index, which the planner also picks for
--   status=running lists, gets the id as a second key (the full list order).

-- +goose Up
CREATE INDEX jobs_task_only_created_idx ON jobs (task_name, created_at DESC, id DESC);
DROP INDEX jobs_unfinished_idx;
CREATE INDEX jobs_unfinished_idx ON jobs (created_at, id) WHERE status IN ('pending', 'running');

-- +goose Down
DROP INDEX jobs_unfinished_idx;
CREATE INDEX jobs_unfinished_idx ON jobs (created_at) WHERE status IN ('pending', 'running');
DROP INDEX jobs_task_only_created_idx;
