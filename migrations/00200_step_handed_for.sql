-- A step the Dispatcher claims for a completion's claim (the completion's
-- `next`) is recorded as started by that claim, so the worker runs it
-- without a `start` report. handed_for names the completion it was claimed
-- for (job id, attempt and step of the completed step): when the worker
-- repeats a completion whose answer it lost, the server finds the step by
-- this name and hands it over again (StepsHandedFor). Every claim sets it,
-- to '' for a step claimed for a long poll.
--
-- Locks: adding a column with a constant default only changes the catalog
-- (PostgreSQL 11 and later): ACCESS EXCLUSIVE on job_steps for a moment,
-- no rewrite, no scan.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN handed_for text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE job_steps DROP COLUMN handed_for;
