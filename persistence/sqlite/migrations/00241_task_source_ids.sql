-- The same as the PostgreSQL schema's 00241_task_source_ids.sql: a sub-job
-- has source_id "parent_job_id/step", as the upstream Strøm's; the sub-jobs
-- stored with the parent's id alone are rewritten from the parent link
-- their context keeps.

-- +goose Up
UPDATE jobs SET source_id = source_id || '/' || json_extract(context, '$.parent.step_name')
WHERE source_type = 'task' AND source_id <> '' AND instr(source_id, '/') = 0
  AND json_valid(context) AND json_extract(context, '$.parent.job_id') = source_id
  AND coalesce(json_extract(context, '$.parent.step_name'), '') <> '';

-- +goose Down
UPDATE jobs SET source_id = substr(source_id, 1, instr(source_id, '/') - 1)
WHERE source_type = 'task' AND instr(source_id, '/') > 0;
