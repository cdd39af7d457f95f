-- A job a cron trigger or a webhook started names its trigger as the
-- upstream Strøm's does: source_id "workspace/trigger" (stroem.TriggerSourceID).
-- It was the trigger's name alone. The jobs stored before are rewritten here,
-- so every reader (the concurrency checks, a trigger's last job, a webhook's
-- job status, the job list's source_id filter) knows one form only.
--
-- During a rolling upgrade a server of the older version still writes the
-- bare name after this ran; such a job keeps it, and the new readers do not
-- take it for its trigger's job (as a job of a trigger since renamed).
-- The statement rewrites every trigger and webhook job in one transaction:
-- on a large table, plan for the time it takes.

-- +goose Up
UPDATE jobs SET source_id = workspace || '/' || source_id
WHERE source_type IN ('trigger', 'webhook') AND source_id <> '';

-- +goose Down
UPDATE jobs SET source_id = substr(source_id, length(workspace) + 2)
WHERE source_type IN ('trigger', 'webhook') AND starts_with(source_id, workspace || '/');
