-- The lines of a for_each step are its instances' ("deploy[0]",
-- "deploy[1]", …): GET …/logs?step=deploy and the SSE stream's step filter
-- read them. job_logs_step_idx finds one step name; the instances of a loop
-- have many names, and a range of names holds exactly them only under a
-- byte-order collation (under ICU's "en", "deploy/x" and "deploy@x" sort
-- between "deploy[" and "deploy\"; the database's collation is the
-- operator's), and its lines would come in name order, to be sorted again
-- at every page.
-- This index keys an instance's lines by their loop (the name without the
-- index: rtrim strips the digits and the closing bracket, "deploy[12]" →
-- "deploy["), found by equality whatever the collation, in seq order
-- (persistence.LogPageQuery). It is partial: only instance lines (names
-- ending in "]"; step names cannot contain brackets) pay its write.
--
-- Locks: CREATE INDEX takes a SHARE lock on job_logs while it reads the
-- table (log pushes wait meanwhile; reads go on).

-- +goose Up
CREATE INDEX job_logs_loop_idx ON job_logs (job_id, rtrim(step_name, '0123456789]'), seq) WHERE step_name LIKE '%]';

-- +goose Down
DROP INDEX job_logs_loop_idx;
