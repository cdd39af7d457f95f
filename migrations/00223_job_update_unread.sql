-- A transition whose server kept the job as its last transition wrote it
-- sends its writes without reading the job first (one round trip instead of
-- two): the same transaction first checks that the job row, its steps and
-- its state snapshots are still as kept, and that the time the server used
-- for the database's is not ahead of it. This function raises the error that
-- stops such a transaction before its writes run; the server then runs the
-- transition again after reading the job (see persistence/postgres update.go).
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION stroem_job_unread_stale(job uuid, what text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	-- ST411: the time estimated for the database's was off; ST410: the job
	-- changed.
	RAISE EXCEPTION 'job % changed since it was kept (%)', job, what
		USING ERRCODE = CASE WHEN what = 'clock' THEN 'ST411' ELSE 'ST410' END;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION stroem_job_unread_stale(uuid, text);
