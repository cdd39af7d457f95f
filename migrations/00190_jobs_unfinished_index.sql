-- Every status change of a job row (created pending, claimed running,
-- finished) is a non-HOT update: status is indexed. Each such row version
-- enters every index whose predicate it satisfies, ten on jobs. The
-- unfinished-jobs index (created_at, id) WHERE status IN ('pending',
-- 'running') took an entry at creation and another at the claim, for
-- queries jobs_unfinished_source_idx (same predicate) and
-- jobs_status_created_idx serve as well: recovery's list of unfinished jobs
-- (once per server start; it sorts the unfinished jobs, bounded by the
-- queue), the unfinished-jobs count, and the job list filtered by a status
-- (jobs_status_created_idx yields it in list order, TestJobListPlan).
--
-- Locks: DROP INDEX takes an ACCESS EXCLUSIVE lock on jobs for a moment (it
-- waits for the transactions using the table and blocks them meanwhile; no
-- scan, no rewrite). The Down's CREATE INDEX takes a SHARE lock (writes to
-- jobs wait while it reads the table).

-- +goose Up
DROP INDEX jobs_unfinished_idx;

-- +goose Down
CREATE INDEX jobs_unfinished_idx ON jobs (created_at, id) WHERE status IN ('pending', 'running');
