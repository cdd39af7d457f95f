-- The same as the PostgreSQL schema's 00222_trigger_source_ids.sql: a job a
-- cron trigger or a webhook started has source_id "workspace/trigger", as the
-- upstream Strøm's; the jobs stored with the trigger's name alone are
-- rewritten.

-- +goose Up
UPDATE jobs SET source_id = workspace || '/' || source_id
WHERE source_type IN ('trigger', 'webhook') AND source_id <> '';

-- +goose Down
UPDATE jobs SET source_id = substr(source_id, length(workspace) + 2)
WHERE source_type IN ('trigger', 'webhook') AND substr(source_id, 1, length(workspace) + 1) = workspace || '/';
