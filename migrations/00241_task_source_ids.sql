-- A sub-job (the child job of a `type: task` step) names the step that made
-- it as the upstream Strøm's does: source_id "parent_job_id/step"
-- (stroem.TaskSourceID), the step a for_each instance's "deploy[2]". It was
-- the parent's id alone. The sub-jobs stored before are rewritten here from
-- the parent link their context keeps ({"parent": {"job_id", "step_name"}}),
-- so the job view's parent_job_id/parent_step_name, a hook's
-- hook.source_id and the job list read one form.
--
-- During a rolling upgrade a server of the older version still writes the
-- parent's id alone after this ran; such a job keeps it, and the job view
-- shows its parent without the step (stroem.ParseTaskSourceID).
-- The statement rewrites every sub-job in one transaction: on a large
-- table, plan for the time it takes.

-- +goose Up
UPDATE jobs SET source_id = source_id || '/' || (context -> 'parent' ->> 'step_name')
WHERE source_type = 'task' AND source_id <> '' AND strpos(source_id, '/') = 0
  AND context -> 'parent' ->> 'job_id' = source_id
  AND coalesce(context -> 'parent' ->> 'step_name', '') <> '';

-- +goose Down
UPDATE jobs SET source_id = split_part(source_id, '/', 1)
WHERE source_type = 'task' AND strpos(source_id, '/') > 0;
