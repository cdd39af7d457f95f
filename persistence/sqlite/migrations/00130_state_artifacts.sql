-- Task state, global state and artifacts (issue 22): the same tables as
-- the PostgreSQL schema's 00130_state_artifacts.sql (see there). Times are
-- Unix nanoseconds like every SQLite time column.

-- +goose Up
CREATE TABLE blob_chunks (
    blob_id    TEXT    NOT NULL,
    n          INTEGER NOT NULL CHECK (n >= 0),
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blob_id, n)
);
CREATE INDEX blob_chunks_created_idx ON blob_chunks (created_at) WHERE n = 0;

CREATE TABLE job_artifacts (
    job_id       TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    step_name    TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    size_bytes   INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    blob_id      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
CREATE INDEX job_artifacts_blob_idx ON job_artifacts (blob_id);

CREATE TABLE state_snapshots (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    workspace   TEXT    NOT NULL,
    task_name   TEXT    NOT NULL,
    job_id      TEXT    REFERENCES jobs (id) ON DELETE SET NULL,
    step_name   TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL CHECK (source IN ('step', 'upload')),
    uploaded_by TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL DEFAULT '{}',
    blob_id     TEXT    NOT NULL,
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX state_snapshots_task_idx ON state_snapshots (workspace, task_name, seq DESC);
CREATE INDEX state_snapshots_blob_idx ON state_snapshots (blob_id);
CREATE INDEX state_snapshots_job_idx ON state_snapshots (job_id) WHERE job_id IS NOT NULL;

-- +goose Down
DROP TABLE state_snapshots;
DROP TABLE job_artifacts;
DROP TABLE blob_chunks;
