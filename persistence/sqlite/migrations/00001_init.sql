-- The embedded store's schema: the same tables, columns, constraints and
-- indexes as the PostgreSQL schema (migrations/ at the repository root), in
-- SQLite's types. STRICT tables refuse a value of the wrong type instead of
-- storing it anyway.
--
-- Translations:
--   * uuid      → TEXT in canonical lower-case form (the store canonicalizes);
--   * timestamp → INTEGER Unix nanoseconds, UTC (exact round trip, ordered);
--   * jsonb     → TEXT holding JSON;
--   * text[]    → TEXT holding a JSON array of strings;
--   * boolean   → INTEGER 0 or 1;
--   * bytea     → BLOB.

-- +goose Up
CREATE TABLE workers (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    capabilities      TEXT    NOT NULL DEFAULT '[]',
    tags              TEXT    NOT NULL DEFAULT '[]',
    registered_at     INTEGER NOT NULL,
    last_heartbeat_at INTEGER NOT NULL
) STRICT;

CREATE TABLE task_snapshots (
    id         TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE jobs (
    id               TEXT    PRIMARY KEY,
    workspace        TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    mode             TEXT    NOT NULL DEFAULT 'distributed',
    input            TEXT    NOT NULL DEFAULT '{}',
    output           TEXT,
    status           TEXT    NOT NULL
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    source_type      TEXT    NOT NULL
        CHECK (source_type IN ('api', 'user', 'trigger', 'webhook')),
    source_id        TEXT    NOT NULL DEFAULT '',
    revision         TEXT    NOT NULL DEFAULT '',
    snapshot_id      TEXT    REFERENCES task_snapshots (id),
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    completed_at     INTEGER,
    CHECK ((status IN ('completed', 'failed', 'cancelled')) = (completed_at IS NOT NULL))
) STRICT;

-- The job list is newest first, optionally filtered: one index per filter
-- the API offers, each yielding rows in list order.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_workspace_created_idx ON jobs (workspace, created_at DESC, id DESC);
CREATE INDEX jobs_task_created_idx ON jobs (workspace, task_name, created_at DESC, id DESC);
CREATE INDEX jobs_task_only_created_idx ON jobs (task_name, created_at DESC, id DESC);
CREATE INDEX jobs_source_created_idx ON jobs (source_type, source_id, created_at DESC, id DESC);
-- Recovery at start reads every unfinished job, oldest first.
CREATE INDEX jobs_unfinished_idx ON jobs (created_at, id) WHERE status IN ('pending', 'running');

CREATE TABLE job_steps (
    job_id              TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name           TEXT    NOT NULL,
    position            INTEGER NOT NULL,
    action_name         TEXT    NOT NULL,
    action_type         TEXT    NOT NULL,
    image               TEXT    NOT NULL DEFAULT '',
    depends_on          TEXT    NOT NULL DEFAULT '[]',
    continue_on_failure INTEGER NOT NULL DEFAULT 0 CHECK (continue_on_failure IN (0, 1)),
    max_attempts        INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    status              TEXT    NOT NULL
        CHECK (status IN ('pending', 'ready', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    input               TEXT,
    output              TEXT,
    error_message       TEXT    NOT NULL DEFAULT '',
    -- The current (latest) attempt; attempt is 0 before the first claim.
    worker_id           TEXT,
    attempt             INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    attempt_status      TEXT    NOT NULL DEFAULT ''
        CHECK (attempt_status IN ('', 'running', 'completed', 'failed', 'cancelled', 'lost')),
    exit_code           INTEGER,
    lease_expires_at    INTEGER,
    ready_at            INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    started_at          INTEGER,
    completed_at        INTEGER,
    PRIMARY KEY (job_id, step_name),
    UNIQUE (job_id, position),
    CHECK (status <> 'ready' OR ready_at IS NOT NULL),
    CHECK (status <> 'running' OR (lease_expires_at IS NOT NULL AND worker_id IS NOT NULL AND attempt >= 1))
) STRICT;

-- The claim: oldest ready step first, among the ready ones only.
CREATE INDEX job_steps_ready_idx ON job_steps (ready_at, position, job_id) WHERE status = 'ready';
-- Lease expiry and the startup lease extension.
CREATE INDEX job_steps_lease_idx ON job_steps (lease_expires_at) WHERE status = 'running';

-- Every execution of a step, kept with its own worker, outcome and error.
CREATE TABLE step_attempts (
    job_id        TEXT    NOT NULL,
    step_name     TEXT    NOT NULL,
    attempt       INTEGER NOT NULL CHECK (attempt >= 1),
    worker_id     TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'lost')),
    exit_code     INTEGER,
    error_message TEXT    NOT NULL DEFAULT '',
    started_at    INTEGER NOT NULL,
    completed_at  INTEGER,
    PRIMARY KEY (job_id, step_name, attempt),
    FOREIGN KEY (job_id, step_name) REFERENCES job_steps (job_id, step_name) ON DELETE CASCADE
) STRICT;

-- The files of a workspace revision, so a worker can fetch what a job was
-- created from even after the workspace changed.
CREATE TABLE workspace_archives (
    revision   TEXT    PRIMARY KEY,
    tarball    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE workspace_archives;
DROP TABLE step_attempts;
DROP TABLE job_steps;
DROP TABLE jobs;
DROP TABLE task_snapshots;
DROP TABLE workers;
