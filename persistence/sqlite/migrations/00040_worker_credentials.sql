-- Per-worker credentials: the same as the PostgreSQL schema's
-- 00040_worker_credentials.sql (the sha256 of each worker's credential).

-- +goose Up
ALTER TABLE workers ADD COLUMN credential_hash BLOB;
CREATE UNIQUE INDEX workers_credential_idx ON workers (credential_hash);

-- +goose Down
DROP INDEX workers_credential_idx;
ALTER TABLE workers DROP COLUMN credential_hash;
