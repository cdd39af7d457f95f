-- Task state, global state and artifacts (issue 22).
--
-- blob_chunks holds every stored file (an artifact, a state snapshot's
-- tarball) as numbered chunks of at most 1 MiB (package blob): the
-- database is the one durable copy every server reads. A blob becomes
-- visible only when a row of job_artifacts or state_snapshots names it,
-- written after its last chunk; chunks no row names (an upload a crash
-- interrupted, a replaced artifact, a pruned snapshot, a deleted job's
-- artifacts) are deleted by retention (BlobsPrune).
--
-- job_artifacts goes with its job (ON DELETE CASCADE). state_snapshots
-- outlive their job (job_id set to NULL when it is deleted); task_name ''
-- is the workspace's global state.

-- +goose Up
CREATE TABLE blob_chunks (
    blob_id    uuid        NOT NULL,
    n          integer     NOT NULL CHECK (n >= 0),
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blob_id, n)
);
CREATE INDEX blob_chunks_created_idx ON blob_chunks (created_at) WHERE n = 0;

CREATE TABLE job_artifacts (
    job_id       uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    step_name    text        NOT NULL,
    attempt      integer     NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL,
    sha256       text        NOT NULL,
    blob_id      uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, name)
);
CREATE INDEX job_artifacts_blob_idx ON job_artifacts (blob_id);

CREATE TABLE state_snapshots (
    seq         bigserial   PRIMARY KEY,
    id          uuid        NOT NULL UNIQUE,
    workspace   text        NOT NULL,
    task_name   text        NOT NULL,
    job_id      uuid        REFERENCES jobs (id) ON DELETE SET NULL,
    step_name   text        NOT NULL DEFAULT '',
    source      text        NOT NULL CHECK (source IN ('step', 'upload')),
    uploaded_by text        NOT NULL DEFAULT '',
    state       jsonb       NOT NULL DEFAULT '{}',
    blob_id     uuid        NOT NULL,
    size_bytes  bigint      NOT NULL,
    sha256      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX state_snapshots_task_idx ON state_snapshots (workspace, task_name, seq DESC);
CREATE INDEX state_snapshots_blob_idx ON state_snapshots (blob_id);
CREATE INDEX state_snapshots_job_idx ON state_snapshots (job_id) WHERE job_id IS NOT NULL;

-- +goose Down
DROP TABLE state_snapshots;
DROP TABLE job_artifacts;
DROP TABLE blob_chunks;
