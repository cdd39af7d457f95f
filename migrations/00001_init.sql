-- The initial schema: workers, task snapshots, jobs, their steps and every
-- attempt of a step, and the workspace archives workers download.
--
-- Statuses are text with CHECK constraints (not enums) so a later status is a
-- one-line migration. Ids of jobs and workers are UUIDs; worker ids stored on
-- steps are text, copied from the claim, so a step keeps naming the worker
-- that ran it even if that worker's row is gone.

-- +goose Up
CREATE TABLE workers (
    id                uuid        PRIMARY KEY,
    name              text        NOT NULL,
    capabilities      text[]      NOT NULL DEFAULT '{}',
    tags              text[]      NOT NULL DEFAULT '{}',
    registered_at     timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- A job keeps the task definition it was created from (task, actions, secret
-- references) so a workspace reload never changes a job already created. The
-- id is a hash of the body: identical definitions are stored once.
CREATE TABLE task_snapshots (
    id         text        PRIMARY KEY,
    body       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id               uuid        PRIMARY KEY,
    workspace        text        NOT NULL,
    task_name        text        NOT NULL,
    mode             text        NOT NULL DEFAULT 'distributed',
    input            jsonb       NOT NULL DEFAULT '{}',
    output           jsonb,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    source_type      text        NOT NULL
        CHECK (source_type IN ('api', 'user', 'trigger', 'webhook')),
    source_id        text        NOT NULL DEFAULT '',
    revision         text        NOT NULL DEFAULT '',
    snapshot_id      text        REFERENCES task_snapshots (id),
    cancel_requested boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL))
);

-- The job list is newest first, optionally filtered; each filter the API
-- offers has an index that yields rows already in list order, so a page is an
-- index range scan whatever the table size.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_workspace_created_idx ON jobs (workspace, created_at DESC, id DESC);
CREATE INDEX jobs_task_created_idx ON jobs (workspace, task_name, created_at DESC, id DESC);
CREATE INDEX jobs_source_created_idx ON jobs (source_type, source_id, created_at DESC, id DESC);
-- Recovery at server start reads every unfinished job.
CREATE INDEX jobs_unfinished_idx ON jobs (created_at) WHERE status IN ('pending', 'running');

CREATE TABLE job_steps (
    job_id              uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name           text        NOT NULL,
    position            integer     NOT NULL,
    action_name         text        NOT NULL,
    action_type         text        NOT NULL,
    image               text        NOT NULL DEFAULT '',
    depends_on          text[]      NOT NULL DEFAULT '{}',
    continue_on_failure boolean     NOT NULL DEFAULT false,
    max_attempts        integer     NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    status              text        NOT NULL
        CHECK (status IN ('pending', 'ready', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    input               jsonb,
    output              jsonb,
    error_message       text        NOT NULL DEFAULT '',
    -- The current (latest) attempt; attempt is 0 before the first claim.
    worker_id           text,
    attempt             integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    attempt_status      text        NOT NULL DEFAULT ''
        CHECK (attempt_status IN ('', 'running', 'completed', 'failed', 'cancelled', 'lost')),
    exit_code           integer,
    lease_expires_at    timestamptz,
    ready_at            timestamptz,
    cancel_requested    boolean     NOT NULL DEFAULT false,
    started_at          timestamptz,
    completed_at        timestamptz,
    PRIMARY KEY (job_id, step_name),
    UNIQUE (job_id, position),
    CHECK (status <> 'ready' OR ready_at IS NOT NULL),
    CHECK (status <> 'running' OR (lease_expires_at IS NOT NULL AND worker_id IS NOT NULL AND attempt >= 1))
);

-- The claim: oldest ready step first, among the ready ones only.
CREATE INDEX job_steps_ready_idx ON job_steps (ready_at) INCLUDE (action_type) WHERE status = 'ready';
-- Lease expiry and the startup lease extension.
CREATE INDEX job_steps_lease_idx ON job_steps (lease_expires_at) WHERE status = 'running';

-- Every execution of a step, kept with its own worker, outcome and error.
CREATE TABLE step_attempts (
    job_id        uuid        NOT NULL,
    step_name     text        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    worker_id     text        NOT NULL DEFAULT '',
    status        text        NOT NULL
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'lost')),
    exit_code     integer,
    error_message text        NOT NULL DEFAULT '',
    started_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (job_id, step_name, attempt),
    FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE
);

-- The files of a workspace revision, so a worker can fetch what a job was
-- created from even after the workspace changed.
CREATE TABLE workspace_archives (
    revision   text        PRIMARY KEY,
    tarball    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE workspace_archives;
DROP TABLE step_attempts;
DROP TABLE job_steps;
DROP TABLE jobs;
DROP TABLE task_snapshots;
DROP TABLE workers;
