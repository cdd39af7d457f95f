-- Job logs in the database (issue 17): every server reads the same durable
-- copy, so SSE, log reads and Last-Event-ID resume work behind a load
-- balancer. Replaces the per-server log files of log_storage.local_dir.
--
-- job_logs holds the lines, keyed by (job, seq): seq counts 1, 2, 3 … per
-- job. job_log_heads holds each job's last seq; an append takes the next
-- seqs by updating that row, whose lock serialises the appends of one job
-- until commit, so seqs become visible in order (no reader ever sees seq n
-- without every smaller seq). step_logs holds, per step, the attempt whose
-- push offsets it tracks (dedup of retried pushes), the bytes stored (the
-- per-step size limit) and whether the log was truncated.
--
-- job_logs has no foreign key (a check per inserted line would cost more
-- than the insert); a trigger removes a deleted job's lines.

-- +goose Up
CREATE TABLE job_logs (
    job_id    uuid        NOT NULL,
    seq       bigint      NOT NULL,
    step_name text        NOT NULL,
    attempt   integer     NOT NULL,
    ts        timestamptz NOT NULL,
    stream    text        NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    text      text        NOT NULL,
    PRIMARY KEY (job_id, seq)
);
-- GET …/logs?step= and SSE ?step= read one step's lines in order.
CREATE INDEX job_logs_step_idx ON job_logs (job_id, step_name, seq);

CREATE TABLE job_log_heads (
    job_id   uuid   PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

CREATE TABLE step_logs (
    job_id      uuid    NOT NULL,
    step_name   text    NOT NULL,
    attempt     integer NOT NULL,
    next_offset bigint  NOT NULL,
    bytes       bigint  NOT NULL,
    truncated   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, step_name),
    FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE
);

-- +goose StatementBegin
CREATE FUNCTION job_logs_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_logs WHERE job_id = OLD.id;
    RETURN OLD;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER jobs_delete_logs AFTER DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION job_logs_delete();

-- +goose Down
DROP TRIGGER jobs_delete_logs ON jobs;
DROP FUNCTION job_logs_delete();
DROP TABLE step_logs;
DROP TABLE job_log_heads;
DROP TABLE job_logs;
