-- +goose Up
-- A transition writes each step only if it is still as the transition read
-- it. It sends its writes and its COMMIT in one round trip, so a write that
-- finds the step moved must fail inside the server, before the COMMIT runs:
-- this function raises the error that makes the transaction run again.
-- +goose StatementBegin
CREATE FUNCTION stroem_step_moved(job uuid, step text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'job % step % changed during the update', job, step USING ERRCODE = 'ST409';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION stroem_step_moved(uuid, text);
