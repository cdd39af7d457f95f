-- A step whose action belongs to another workspace (a cross-workspace
-- reference, docs/workspaces.md) runs on that workspace's revision, pinned
-- when the job is created; NULL means the job's own revision. The worker
-- holding such a step may download that revision's archive.

-- +goose Up
ALTER TABLE job_steps ADD COLUMN revision text;

-- +goose Down
ALTER TABLE job_steps DROP COLUMN revision;
