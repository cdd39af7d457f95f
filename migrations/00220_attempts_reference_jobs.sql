-- Every claim and hand-over inserts a step_attempts row, and a step's first
-- log lines a step_logs row. Their foreign keys named the step, (job_id,
-- step_name) in job_steps, and PostgreSQL checks such a key with a lookup
-- planned generically: on a young job_steps (a new installation, the bench)
-- that plan went through the (job_id, position) index and filtered the
-- names, reading the job's steps up to the one it looked for at every
-- attempt (TestForeignKeyLookupsOfHotInsertsUseTheWholeKey).
--
-- The rows now reference their job instead: the lookup is the jobs primary
-- key, and a job's deletion still takes them with it (ON DELETE CASCADE).
-- The lookup locks the job row FOR KEY SHARE, which a transition's lock on
-- it (FOR NO KEY UPDATE, persistence/postgres/update.go) and a claim's
-- (marking the job running) do not exclude: a claim or a log push never
-- waits for a transition of the job because of it. Nothing
-- deletes a single step of a job, and the store writes an attempt or a log
-- record only for a step it has just read or written, so the step's
-- existence needs no check of its own.
--
-- The new keys are added NOT VALID: the rows already stored referenced a
-- step, hence a job, so checking them again would only hold a lock on
-- step_attempts and step_logs while both tables are read. New rows are
-- checked as with any key.

-- +goose Up
ALTER TABLE step_attempts DROP CONSTRAINT step_attempts_job_id_step_name_fkey;
ALTER TABLE step_attempts ADD CONSTRAINT step_attempts_job_id_fkey
	FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE NOT VALID;
ALTER TABLE step_logs DROP CONSTRAINT step_logs_job_id_step_name_fkey;
ALTER TABLE step_logs ADD CONSTRAINT step_logs_job_id_fkey
	FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE NOT VALID;

-- +goose Down
ALTER TABLE step_logs DROP CONSTRAINT step_logs_job_id_fkey;
ALTER TABLE step_logs ADD CONSTRAINT step_logs_job_id_step_name_fkey
	FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE;
ALTER TABLE step_attempts DROP CONSTRAINT step_attempts_job_id_fkey;
ALTER TABLE step_attempts ADD CONSTRAINT step_attempts_job_id_step_name_fkey
	FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE;
