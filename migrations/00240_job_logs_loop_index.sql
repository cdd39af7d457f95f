-- The lines of a for_each step are its instances' ("deploy[0]",
-- "deploy[1]", …): GET …/logs?step=deploy and the SSE stream's step filter
-- read them. job_logs_step_idx finds one step name; the instances of a loop
-- have many names, and a range of names cannot be trusted to hold exactly
-- them under a database's collation (en_US orders by letters first and
-- punctuation later: "deploy[1]" is not between "deploy[" and "deploy\").
-- This index keys an instance's lines by their loop (the name without the
-- index: rtrim strips the digits and the closing bracket, "deploy[12]" →
-- "deploy["), found by equality whatever the collation, in seq order
-- (persistence.LogPageQuery). It is partial: only instance lines (names
-- ending in "]"; step names cannot contain brackets) pay its write.
--
-- Locks: job_logs is the largest table, and a plain CREATE INDEX would hold
-- a SHARE lock while it reads all of it, stopping every log push meanwhile.
-- CONCURRENTLY takes SHARE UPDATE EXCLUSIVE instead (pushes and reads go
-- on; it waits for the transactions already writing job_logs to end), and
-- cannot run in a transaction. A build that failed half-way leaves an
-- invalid index behind; the DROP before it removes that one when the
-- migration runs again.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS job_logs_loop_idx;
CREATE INDEX CONCURRENTLY job_logs_loop_idx ON job_logs (job_id, rtrim(step_name, '0123456789]'), seq) WHERE step_name LIKE '%]';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS job_logs_loop_idx;
