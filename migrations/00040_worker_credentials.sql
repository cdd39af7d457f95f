-- Per-worker credentials: a worker registers with the shared worker token
-- and receives a credential of its own; the server keeps only its sha256.
-- Every later worker call authenticates with it and is checked against the
-- worker id it is bound to. Workers registered before this migration have
-- no credential and must register again.

-- +goose Up
ALTER TABLE workers ADD COLUMN credential_hash bytea;
CREATE UNIQUE INDEX workers_credential_idx ON workers (credential_hash);

-- +goose Down
DROP INDEX workers_credential_idx;
ALTER TABLE workers DROP COLUMN credential_hash;
