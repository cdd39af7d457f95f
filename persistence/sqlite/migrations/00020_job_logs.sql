-- Job logs in the database, as in the PostgreSQL schema's 00020_job_logs.sql
-- (see there). SQLite has one writer at a time, so seqs are committed in
-- order without a lock of their own; job_log_heads keeps the same shape.

-- +goose Up
CREATE TABLE job_logs (
    job_id    TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    step_name TEXT    NOT NULL,
    attempt   INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    stream    TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    text      TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX job_logs_step_idx ON job_logs (job_id, step_name, seq);

CREATE TABLE job_log_heads (
    job_id   TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    last_seq INTEGER NOT NULL CHECK (last_seq >= 0)
) STRICT;

CREATE TABLE step_logs (
    job_id      TEXT    NOT NULL,
    step_name   TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    truncated   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, step_name),
    FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER jobs_delete_logs AFTER DELETE ON jobs FOR EACH ROW BEGIN
    DELETE FROM job_logs WHERE job_id = OLD.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER jobs_delete_logs;
DROP TABLE step_logs;
DROP TABLE job_log_heads;
DROP TABLE job_logs;
